"""DVC stage `download`: put verified FashionMNIST IDX files under data.root."""

from lrsched.cli import base_parser, load_args_config, log, run_main
from lrsched.data import download, raw_dir


def main() -> None:
    args = base_parser(__doc__).parse_args()
    cfg = load_args_config(args)
    source = download(cfg.data.root, cfg.data.sources, cfg.data.checksums)
    log.info("FashionMNIST ready in %s (from %s)", raw_dir(cfg.data.root), source)


if __name__ == "__main__":
    run_main(main)
