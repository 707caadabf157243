"""One module per operation of the command line, each importing only what it needs:
create, start, kill, delete, run, exec, state (and list), update, pause/resume, events,
ps, features, validate.  ociish.ops.container is what they share: a container loaded
from its record, with its derived status.
"""
