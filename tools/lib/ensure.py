"""For the Python benchmarks: install what they need, as tools/test does (common.sh)."""
import subprocess


def ensure_tools(root):
    """Debian packages (build, run, test peers, mbsync) and the vbmail user; idempotent."""
    subprocess.run(["bash", "-c", 'source tools/lib/common.sh && ensure_packages "${BUILD_PACKAGES[@]}" '
                    '"${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${BENCH_PACKAGES[@]}" && ensure_mail_user'],
                   cwd=root, check=True)
