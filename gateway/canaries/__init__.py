"""Quality canaries at work: running each deployment's suite on an interval, within a budget of their own."""
