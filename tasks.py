"""slakit's invoke tasks: `invoke --list` shows them, `invoke --help TASK` explains one.

This file only assembles namespaces; the work lives in the `slakit` package.
"""

from invoke import Collection

from slakit.tasks import bench, check, deploy, dev, drill, lab, release, secrets, tune

ns = Collection()
ns.add_task(deploy.deploy)
ns.add_task(release.rollback)
ns.add_collection(check.ns)
ns.add_collection(drill.ns)
ns.add_collection(lab.ns)
ns.add_collection(secrets.ns)
ns.add_task(tune.tune_, name="tune")
ns.add_task(bench.bench)
ns.add_task(dev.lint)
ns.add_task(dev.test)
