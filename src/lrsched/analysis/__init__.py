"""The decisive comparison's rules: failures, paired tests with corrections, equivalence, when to stop."""
