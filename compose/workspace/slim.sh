#!/bin/sh
# Removes from a Workspace image what a Workspace never runs (compose/Dockerfile.workspace runs
# it as root in its build stages; the final image copies the result in one layer).
#
#   slim.sh venv     /opt/venv: build-only and other platforms' files, debug symbols
#   slim.sh system   the base's package manager, Perl, charset tables, Python's test suite...
#
# Kept on purpose: every JupyterLab feature (file browser, notebooks, terminals with bash and
# coreutils, the debugger, the lab extensions), pip (`%pip install` in a notebook), jedi's
# standard-library stubs (completion), the .pyc files (the venv is read-only for emr-notebook:
# without them every start would compile every import again), the copyright files.
set -eu

venv() {
    site=/opt/venv/lib/python3.11/site-packages
    pip uninstall -q -y setuptools
    # Babel's locale data but English (JupyterLab ships no other language pack); jedi's
    # third-party stubs (jedi reads the installed sources instead); Galata (JupyterLab's UI test
    # harness); yarn.js (`jlpm` builds extensions with Node.js, which a Workspace does not have).
    find "$site/babel/locale-data" -type f ! -name root.dat ! -name en.dat ! -name 'en_*.dat' \
        -delete
    rm -rf "$site/jedi/third_party/typeshed/stubs" "$site/jedi/third_party/django-stubs" \
        "$site/jupyterlab/galata" "$site/jupyter_builder/yarn.js"
    mkdir "$site/jedi/third_party/typeshed/stubs"
    # JupyterLab's second copy of its front end: the package's static/ is
    # share/jupyter/lab/static, which the server serves (a link now).
    diff -rq "$site/jupyterlab/static" /opt/venv/share/jupyter/lab/static
    rm -rf "$site/jupyterlab/static"
    ln -s /opt/venv/share/jupyter/lab/static "$site/jupyterlab/static"
    # The debugger attaches in-process (ipykernel's debugpy): pydevd's attach-to-a-Windows-
    # process library and its Cython sources (the compiled module is what runs) are not used.
    pydevd="$site/debugpy/_vendored/pydevd"
    rm -rf "$pydevd/pydevd_attach_to_process/winappdbg" "$pydevd/pydevd_attach_to_process/windows"
    # Packages' own test suites, C/Cython sources and Windows/macOS binaries.
    find "$site" -mindepth 2 -depth -type d \( -name tests -o -name test \) -exec rm -rf {} +
    find "$site" -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.pyx' -o -name '*.pxd' \
        -o -name '*.exe' -o -name '*.dll' -o -name '*.dylib' -o -name '*.pdb' \) -delete
    # Debug symbols of the wheels' extension modules (about 6 MB; tracebacks keep Python frames).
    find /opt/venv -type f -name '*.so*' -exec strip --strip-unneeded {} +
    # .pyc files whose source is gone.
    find /opt/venv -path '*/__pycache__/*.pyc' | while read -r pyc; do
        dir=${pyc%/__pycache__/*}; name=${pyc##*/}
        [ -e "$dir/${name%%.*}.py" ] || rm -f "$pyc"
    done
}

system() {
    # Packages nothing runs once the image is built (the Workspace user is not root: no apt,
    # no dpkg, no adduser; Perl and debconf serve only them), with what only they use.
    pkgs="apt libapt-pkg6.0 gpgv debian-archive-keyring libgnutls30 libp11-kit0 libtasn1-6
        libnettle8 libhogweed6 perl-base debconf adduser e2fsprogs libext2fs2 libss2 logsave
        python3-pip-whl python3-setuptools-whl python3-lib2to3"
    files=$(mktemp)
    for pkg in $pkgs; do
        dpkg-query -L "$pkg" 2>/dev/null || true
    done | sort -u > "$files"
    while read -r path; do
        # Files only: with merged /usr, /lib and /bin are links to directories.
        if [ ! -d "$path" ] && { [ -f "$path" ] || [ -L "$path" ]; }; then
            case "$path" in /usr/share/doc/*/copyright) ;; *) rm -f "$path" ;; esac
        fi
    done < "$files"
    rm -f "$files"
    # The openssl command line (Python's ssl uses the library), glibc's iconv charset modules
    # (Python has its own codecs), dpkg's database and tools, debconf's and apt's caches, logs.
    rm -rf /usr/bin/openssl /usr/bin/c_rehash /usr/lib/x86_64-linux-gnu/gconv \
        /var/lib/dpkg /var/cache/debconf /var/cache/apt /var/lib/apt /var/log/* \
        /usr/bin/dpkg* /usr/sbin/dpkg* /usr/share/dpkg /etc/dpkg /usr/lib/dpkg \
        /etc/apt /usr/share/lintian /usr/share/man /usr/share/info
    # Python's own test suite and test modules, and ensurepip (its wheels are gone:
    # `python3 -m venv --without-pip` still works). Both stdlib locations: Debian's python3
    # (the bootstrapped base) and python:3.11-slim's /usr/local.
    for lib in /usr/lib/python3.11 /usr/local/lib/python3.11; do
        [ -d "$lib" ] || continue
        rm -rf "$lib/test" "$lib/idlelib" "$lib/tkinter" "$lib/turtledemo" "$lib/ensurepip" \
            "$lib/lib2to3" "$lib"/lib-dynload/_test*.so "$lib"/lib-dynload/_xxtestfuzz*.so \
            "$lib"/lib-dynload/_ctypes_test*.so "$lib"/lib-dynload/xxlimited*.so
        find "$lib" -path '*/__pycache__/*.pyc' | while read -r pyc; do
            dir=${pyc%/__pycache__/*}; name=${pyc##*/}
            [ -e "$dir/${name%%.*}.py" ] || rm -f "$pyc"
        done
    done
    check_libraries
}

# Fails the build if a program or extension module kept lost a library it links against.
check_libraries() {
    python3 - <<'EOF'
import os, subprocess, sys

missing = []
for top in ("/usr/bin", "/usr/sbin", "/usr/lib", "/usr/local", "/opt/venv"):
    for root, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
            missing += [f"{path}: {line.strip()}" for line in out.splitlines() if "not found" in line]
if missing:
    sys.exit("libraries missing after slimming:\n" + "\n".join(missing))
EOF
}

"$1"
