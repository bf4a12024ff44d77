"""slakit's invoke tasks: `invoke --list` shows them, `invoke --help TASK` explains one.

This file only assembles namespaces; the work lives in the `slakit` package.
"""

from invoke import Collection

from slakit.tasks import bench, dev, lab

ns = Collection()
ns.add_collection(lab.ns)
ns.add_task(bench.bench)
ns.add_task(dev.lint)
ns.add_task(dev.test)
