# Seed corpora of fuzz_pickle and fuzz_zip (tests/fuzz/corpus/pickle, corpus/zip).
# Run with Debian's /usr/bin/python3 (torch and numpy; pickle and zipfile suffice without
# them): /usr/bin/python3 tests/fuzz/gen_scan_corpus.py. Nothing here is unpickled.
import io, os, pickle, struct, sys, tarfile, zipfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
P, Z = os.path.join(root, "pickle"), os.path.join(root, "zip")
os.makedirs(P, exist_ok=True)
os.makedirs(Z, exist_ok=True)

def w(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

class Evil:
    def __reduce__(self):
        return (os.system, ("true",))

state = {"w": [1.0, 2.0], "name": "x", "n": None, "t": (1, 2), "s": {1}, "b": b"\0" * 40}
for proto in range(6):
    w(P, "dict_p%d" % proto, pickle.dumps(state, protocol=proto))
    w(P, "evil_p%d" % proto, pickle.dumps(Evil(), protocol=proto))
w(P, "stack_global_memo", b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94" b"00h\x00h\x01\x93\x8c\x031+1\x85R.")
w(P, "getattr", b"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(S'builtins'\ntRS'exec'\ntR(S'1'\ntR.")
w(P, "ext1", b"\x80\x02\x82\x01.")
w(P, "stacked", pickle.dumps(1, protocol=2) + pickle.dumps(Evil(), protocol=2) + b"\x80\x02\xff")
npy_hdr = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
npy_hdr += b" " * (63 - len(npy_hdr) % 64) + b"\n"
w(P, "npy_object", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(npy_hdr)) + npy_hdr + pickle.dumps([Evil()], protocol=3))
try:
    import numpy as np
    w(P, "numpy_p2", pickle.dumps(np.arange(4, dtype="f4"), protocol=2))
    w(P, "numpy_p5", pickle.dumps(np.arange(4, dtype="f4"), protocol=5))
except ImportError:
    pass

def zbytes(members, compression=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression) as z:
        for n, d in members:
            z.writestr(n, d)
    return b.getvalue()

torch_like = [("archive/data.pkl", pickle.dumps(state, protocol=2)), ("archive/data/0", b"\0" * 16),
              ("archive/version", b"3\n")]
w(Z, "torch_like", zbytes(torch_like))
w(Z, "deflated_evil", zbytes([("archive/data.pkl", pickle.dumps(Evil(), protocol=2))], zipfile.ZIP_DEFLATED))
w(Z, "traversal", zbytes([("../../x", b"x"), ("/abs", b"y"), ("C:/w", b"z")]))
w(Z, "ratio", zbytes([("zeros.bin", b"\0" * 300000)], zipfile.ZIP_DEFLATED))
w(Z, "nested", zbytes([("inner.zip", zbytes([("a.pkl", pickle.dumps(Evil()))]))]))
w(Z, "nested_deflated", zbytes([("inner.npz", zbytes([("o.npy", b"\x93NUMPY\x01\x00")]))], zipfile.ZIP_DEFLATED))
enc = bytearray(zbytes([("data.pkl", b"garbage")]))
enc[6] |= 1  # local header flags
cd = enc.rfind(b"PK\x01\x02")
enc[cd + 8] |= 1  # central directory flags
w(Z, "encrypted", bytes(enc))
b = io.BytesIO()
with zipfile.ZipFile(b, "w", allowZip64=True) as z:
    with z.open("archive/data.pkl", "w", force_zip64=True) as f:
        f.write(pickle.dumps(state))
w(Z, "zip64", b.getvalue())
t = io.BytesIO()
with tarfile.open(fileobj=t, mode="w", format=tarfile.USTAR_FORMAT) as tf:
    for n, d in [("sys_info", pickle.dumps({"little_endian": True}, protocol=2)), ("pickle", pickle.dumps(Evil(), protocol=2))]:
        ti = tarfile.TarInfo(n)
        ti.size = len(d)
        tf.addfile(ti, io.BytesIO(d))
w(Z, "legacy_tar", t.getvalue())
try:
    import torch
    bb = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, bb)
    w(Z, "torch_save", bb.getvalue())
except ImportError:
    pass
