#!/usr/bin/env python3
"""Writes and checks switchyard's container image as an OCI image layout, without a container
engine: one gzip'd tar layer holding the static binary (and the empty folders its volumes mount
on), the image config, the manifest and index.json, each blob named by its sha256.

  oci-image.py build --binary BIN --out DIR [--tag switchyard:dev] [--archive FILE.tar]
  oci-image.py check DIR [--binary BIN]

`check` reads the layout back as an engine would: index -> manifest -> config and layer, every
digest and size verified, the layer's files listed, and the config's entrypoint, user, ports and
volumes compared with what `build` promises. It prints what it saw and exits 1 on a mismatch.

The output is reproducible: fixed timestamps and owners, so the same binary gives the same
digests.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

# What the image promises (README "Sidecar"); `check` holds the layout to it.
UID = GID = 65532  # non-root ("nonroot" in distroless images); no /etc/passwd needed
ENTRYPOINT = ["/usr/bin/switchyard"]
CMD = ["proxy", "--config", "/etc/switchyard/proxy.toml"]
PORTS = ["6033/tcp", "6032/tcp", "6070/tcp"]  # MySQL clients, admin, HTTP (/readyz /healthz /metrics)
VOLUMES = ["/etc/switchyard", "/run/secrets/switchyard", "/var/lib/switchyard"]
ENV = [
    "PATH=/usr/bin",
    # The default state folder is $XDG_STATE_HOME/switchyard/proxy: in the data volume.
    "XDG_STATE_HOME=/var/lib",
]
# (path, mode, uid, gid); folders only, the binary is added on its own.
FOLDERS = [
    ("etc", 0o755, 0, 0),
    ("etc/switchyard", 0o755, 0, 0),
    ("run", 0o755, 0, 0),
    ("run/secrets", 0o755, 0, 0),
    ("run/secrets/switchyard", 0o755, 0, 0),
    ("tmp", 0o1777, 0, 0),  # SQLite's temporary files
    ("usr", 0o755, 0, 0),
    ("usr/bin", 0o755, 0, 0),
    ("var", 0o755, 0, 0),
    ("var/lib", 0o755, 0, 0),
    ("var/lib/switchyard", 0o700, UID, GID),
    # ProxySQL's datadir, so `proxysql -f -D /var/lib/proxysql -c …` (seed 004) runs unchanged:
    # a named volume mounted there starts with this folder's owner.
    ("var/lib/proxysql", 0o700, UID, GID),
]
BINARY = "usr/bin/switchyard"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = "1970-01-01T00:00:00Z"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(binary):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, mode, uid, gid in FOLDERS:
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 0
            tar.addfile(info)
        with open(binary, "rb") as f:
            data = f.read()
        info = tarfile.TarInfo(BINARY)
        info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o755, 0, 0, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put_blob(out, data):
    digest = sha256(data)
    path = os.path.join(out, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def build(args):
    out = args.out
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    tar = layer_tar(args.binary)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=args.gzip_level) as g:
        g.write(tar)
    layer = put_blob(out, gz.getvalue())
    layer["mediaType"] = MEDIA_LAYER
    config = {
        "created": EPOCH,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": ENTRYPOINT,
            "Cmd": CMD,
            "Env": ENV,
            "ExposedPorts": {p: {} for p in PORTS},
            "Volumes": {v: {} for v in VOLUMES},
            "WorkingDir": "/",
            "StopSignal": "SIGTERM",
            "Labels": {
                "org.opencontainers.image.title": "switchyard",
                "org.opencontainers.image.description": "switchyard proxy, static binary on an empty base",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
        "history": [{"created": EPOCH, "created_by": "scripts/oci-image.py build"}],
    }
    cfg = put_blob(out, json.dumps(config, indent=2, sort_keys=True).encode())
    cfg["mediaType"] = MEDIA_CONFIG
    manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "config": cfg, "layers": [layer]}
    man = put_blob(out, json.dumps(manifest, indent=2, sort_keys=True).encode())
    man["mediaType"] = MEDIA_MANIFEST
    man["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [man]}, f, indent=2, sort_keys=True)
    if args.archive:
        # An oci-archive (what `podman load -i` and `skopeo copy oci-archive:` read).
        with tarfile.open(args.archive, "w", format=tarfile.PAX_FORMAT) as t:
            for name in sorted(os.listdir(out)):
                t.add(os.path.join(out, name), arcname=name)
    print(f"image {args.tag}: manifest {man['digest']}, layer {layer['size']} bytes gzip'd, "
          f"{len(tar)} bytes unpacked")


class Mismatch(Exception):
    pass


def blob(layout, desc):
    algo, hexd = desc["digest"].split(":", 1)
    with open(os.path.join(layout, "blobs", algo, hexd), "rb") as f:
        data = f.read()
    if sha256(data) != desc["digest"] or len(data) != desc["size"]:
        raise Mismatch(f"blob {desc['digest']}: content does not match its digest or size")
    return data


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: {got!r}, expected {want!r}")
    print(f"  {what}: {got!r}")


def check(args):
    layout = args.layout
    with open(os.path.join(layout, "oci-layout")) as f:
        expect("oci-layout version", json.load(f).get("imageLayoutVersion"), "1.0.0")
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    if len(index.get("manifests", [])) != 1:
        raise Mismatch("index.json: expected exactly one manifest")
    mdesc = index["manifests"][0]
    expect("manifest media type", mdesc.get("mediaType"), MEDIA_MANIFEST)
    manifest = json.loads(blob(layout, mdesc))
    config = json.loads(blob(layout, manifest["config"]))
    expect("os/arch", (config["os"], config["architecture"]), ("linux", "amd64"))
    c = config["config"]
    expect("entrypoint", c.get("Entrypoint"), ENTRYPOINT)
    expect("cmd", c.get("Cmd"), CMD)
    user = c.get("User", "")
    if user.split(":")[0] in ("", "0", "root"):
        raise Mismatch(f"user {user!r} is root")
    print(f"  user: {user!r} (not root)")
    expect("exposed ports", sorted(c.get("ExposedPorts", {})), sorted(PORTS))
    expect("volumes", sorted(c.get("Volumes", {})), sorted(VOLUMES))
    expect("stop signal", c.get("StopSignal"), "SIGTERM")
    if len(manifest["layers"]) != 1:
        raise Mismatch("expected one layer")
    gz = blob(layout, manifest["layers"][0])
    tar = gzip.decompress(gz)
    expect("layer diff_id", config["rootfs"]["diff_ids"], [sha256(tar)])
    files = []
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in t.getmembers():
            if m.isfile():
                files.append(m.name)
                if m.name == BINARY:
                    expect("binary mode/owner", (oct(m.mode), m.uid, m.gid), (oct(0o755), 0, 0))
                    data = t.extractfile(m).read()
                    if args.binary:
                        with open(args.binary, "rb") as f:
                            expect("binary sha256 = input's", sha256(data), sha256(f.read()))
            elif not m.isdir():
                raise Mismatch(f"unexpected entry {m.name} ({m.type!r})")
    expect("files in the image", files, [BINARY])
    print(f"layout: ok ({mdesc['digest']}, layer {manifest['layers'][0]['size']} bytes)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build")
    b.add_argument("--binary", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--tag", default="switchyard:dev")
    b.add_argument("--archive")
    b.add_argument("--gzip-level", type=int, default=6, choices=range(1, 10))
    c = sub.add_parser("check")
    c.add_argument("layout")
    c.add_argument("--binary")
    args = p.parse_args()
    try:
        build(args) if args.verb == "build" else check(args)
    except (Mismatch, OSError, KeyError, ValueError) as e:
        print(f"layout: MISMATCH: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
