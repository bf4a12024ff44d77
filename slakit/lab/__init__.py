"""The lab: systemd containers on this machine, one per host of inventories/lab.

`spec` reads and validates the inventory, `engine` reaches (or installs) the Docker engine,
`image` builds the node image, `keys` owns the lab's SSH identity, `nodes` creates, adopts,
lists and removes the containers. Everything it makes carries the LABEL below.
"""

LABEL = "io.slakit.lab"
