# The image kuberay.yaml (and `graphrec kuberay --image`) runs: the project at /home/ray/graphrec on Ray's own
# image, installed as scripts/env.sh installs it (every version pinned by constraints.txt).
#
#   docker build -t graphrec-ray:0.1.0 .          # tag = pyproject's version; push it where your cluster pulls
#
# - Ray's image must carry the Ray version of constraints.txt: the Serve config in kuberay.yaml was built by it
#   (tests/unit/ops/test_dockerfile.py checks the pins agree).
# - torch comes from PyTorch's CPU index: the default wheel pulls the multi-GB CUDA stack (for GPU nodes use a
#   rayproject/ray:*-gpu base and drop --index-url).
# - Editable install: serve_app resolves relative paths in Serve configs against the project folder, which must
#   stay /home/ray/graphrec (kuberay.yaml's `config:` points into it), not site-packages.
# - No data, runs or model artifacts in the image (.dockerignore): run directories come from a volume.
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu

WORKDIR /home/ray/graphrec
COPY --chown=ray:users pyproject.toml constraints.txt README.md ./
COPY --chown=ray:users graphrec_ray/ graphrec_ray/
COPY --chown=ray:users jobs/ jobs/
COPY --chown=ray:users serve_app/ serve_app/
COPY --chown=ray:users tune/ tune/
COPY --chown=ray:users configs/ configs/
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -c constraints.txt -e . \
 && python -c "import ray, torch, faiss, serve_app.app; assert ray.__version__ == '${RAY_VERSION}'"

ENV RAY_USAGE_STATS_ENABLED=0 \
    PYTHONUNBUFFERED=1
