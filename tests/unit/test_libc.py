"""ociish.linux.libc binds libc through _ctypes with C types of its own (not the ctypes
package, whose import is 15 M instructions): they must be ctypes' types, byte for byte,
and the calls must behave as through ctypes.CDLL(None, use_errno=True)."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys

import pytest

from ociish.linux import libc as L

C_TYPES = ("c_char", "c_short", "c_ushort", "c_int", "c_uint", "c_long", "c_ulong", "c_uint64", "c_void_p",
           "c_int32", "c_uint32")


@pytest.mark.parametrize("name", C_TYPES)
def test_each_c_type_is_ctypes_own(name: str) -> None:
    ours, theirs = getattr(L, name), getattr(ctypes, name)
    assert (ctypes.sizeof(ours), ctypes.alignment(ours)) == (ctypes.sizeof(theirs), ctypes.alignment(theirs))
    assert ours._type_ == theirs._type_ or name == "c_uint64"  # "Q" beside ctypes' "L": both 8 bytes
    value = 200 if name in ("c_char", "c_void_p") else -2 if name in ("c_short", "c_int", "c_long", "c_int32") else 7
    raw = bytes([value]) if name == "c_char" else value
    assert bytes(ours(raw)) == bytes(theirs(raw))


def test_every_structure_has_the_layout_of_ctypes() -> None:
    """Each Structure of the module, rebuilt from ctypes' own types, has the same size and offsets."""
    structures = [v for v in vars(L).values()
                  if isinstance(v, type) and issubclass(v, ctypes.Structure) and v is not ctypes.Structure]
    assert len(structures) >= 8
    ours_to_theirs = {getattr(L, name): getattr(ctypes, name) for name in C_TYPES}

    def theirs(ctype: type) -> type:
        if hasattr(ctype, "_length_"):  # an array
            return theirs(ctype._type_) * ctype._length_
        return ours_to_theirs[ctype]

    for structure in structures:
        fields = [(name, theirs(ctype)) for name, ctype in structure._fields_]
        twin = type(structure.__name__, (ctypes.Structure,), {"_fields_": fields})
        assert ctypes.sizeof(structure) == ctypes.sizeof(twin), structure
        assert [getattr(structure, n).offset for n, _ in fields] == [getattr(twin, n).offset for n, _ in fields]


def test_calls_return_values_and_keep_errno() -> None:
    assert L.prctl(L.PR_CAPBSET_READ, 0) in (0, 1)
    if os.uname().machine == "x86_64":
        assert L._syscall(L.c_long(39)) == os.getpid()  # getpid: a syscall returns a C long
    with pytest.raises(OSError) as raised:
        L.setns(1_000_000, 0)
    assert raised.value.errno == errno.EBADF and "setns" in str(raised.value)
    fd = os.open("/proc/self", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert L.fstatfs_type(fd) == L.PROC_SUPER_MAGIC
    finally:
        os.close(fd)
    with open("/proc/self/status") as f:
        effective = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    assert L.capget()[0] == effective


def test_a_process_name_is_cut_to_15_bytes() -> None:
    code = ("from ociish.linux import libc as L; L.set_process_name('a-very-long-process-name'); "
            "print(open('/proc/self/comm').read().strip())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "a-very-long-pro"


def test_close_range_cloexec_marks_the_fds_above() -> None:
    code = ("import os; from ociish.linux import libc as L; r, w = os.pipe(); os.set_inheritable(r, True); "
            "os.set_inheritable(w, True); L.close_range_cloexec(w); print(os.get_inheritable(r), os.get_inheritable(w))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False"]


def test_the_libc_module_does_not_import_the_ctypes_package() -> None:
    code = "import sys; import ociish.linux.libc; print('ctypes' in sys.modules, '_ctypes' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
