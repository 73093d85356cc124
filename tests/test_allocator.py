"""pdeopt keeps freed temporaries in the process: a second temporary of a state's size is not
page-faulted in again."""

import os
import subprocess
import sys

PROBE = """
import resource, numpy as np
np._core.multiarray._set_madvise_hugepage(False)  # count 4 KiB pages, whatever THP does
{setup}
def faults_of_a_fresh_temporary(n=2_000_000):  # 16 MB, as a state block at size M
    x = np.ones(n)
    (x * 2.0).sum()  # a first temporary, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    (x * 3.0).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults_of_a_fresh_temporary())
"""


def _faults(setup, **env):
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], check=True,
                         capture_output=True, text=True, env={**os.environ, **env})
    return int(out.stdout.split()[-1])


def test_freed_temporaries_are_reused_not_faulted_in_again():
    tuned = "from pdeopt.allocator import keep_freed_memory; assert keep_freed_memory()"
    # 16 MB is 4096 pages: glibc's defaults fault most of them in again
    assert _faults("") > 1000
    assert _faults(tuned) < 100


def test_the_allocator_can_be_left_alone():
    setup = "from pdeopt.allocator import keep_freed_memory; assert not keep_freed_memory()"
    assert _faults(setup, PDEOPT_KEEP_FREED_MEMORY="0") > 1000
