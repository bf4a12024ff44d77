"""Scripts slakit runs on managed hosts (ansible.builtin.script): Python 3.9+, stdlib only."""
