# syntax=docker/dockerfile:1
# The three light images, one target each, sharing every layer up to their own code:
#   predictor    the CNN (model.onnx on ONNX Runtime) behind a KServe v2 ModelServer (REST 8080,
#                gRPC 8081). No torch, MLflow's client only: ~0.6 GB, not 1.7 (docs/serving.md).
#   transformer  image in, top-k labels out, KServe v2 (REST 8080, gRPC 8081). No torch.
#   frontend     the Streamlit drawing app (8501). No torch, no KServe server.
# COMPONENT names the component folder and its extra (model, transformer, frontend); the target's
# own check fails the build when the two do not belong together. `make images` passes both.
# Build from the repository root:
#   docker build --target predictor --build-arg COMPONENT=model -t bukva/predictor:0.1.0 .
#   docker build --target transformer --build-arg COMPONENT=transformer -t bukva/transformer:0.1.0 .
#   docker build --target frontend --build-arg COMPONENT=frontend -t bukva/frontend:0.1.0 .
# The trainer (torch, DVC, git) has its own: pipelines/Dockerfile.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
FROM ${PYTHON_IMAGE} AS component

ARG UV_VERSION=0.13.8
ARG COMPONENT
# HOME=/tmp: the root filesystem is read-only in the pod; /tmp is an emptyDir.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_NO_CACHE=1 BUKVA_HOME=/app HOME=/tmp

WORKDIR /app
RUN test -n "${COMPONENT}" || { echo "--build-arg COMPONENT=model|transformer|frontend" >&2; exit 2; } \
    && pip install --no-cache-dir "uv==${UV_VERSION}" \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /app bukva
# Dependencies first (the slow layer), keyed only on the lock and the project metadata: an
# edit of the code reuses it. Only the component's extra (model: onnxruntime, kserve,
# mlflow-skinny; transformer: kserve, numpy, Pillow; frontend: streamlit and its own);
# every version from the lock.
COPY pyproject.toml requirements.lock ./
RUN uv pip install --system -c requirements.lock -r pyproject.toml --extra ${COMPONENT}
# Then the code, and the project itself without dependencies (seconds). Each target's check
# then fails the build if torch (or, in the frontend, KServe) crept in: registered versions
# carry model.onnx.
COPY README.md ./
COPY src/ src/
COPY ${COMPONENT}/ ${COMPONENT}/
RUN uv pip install --system --no-deps .
USER 10001:10001

FROM component AS servers
# OPENBLAS_NUM_THREADS and MALLOC_*: as launch/serve.py SERVER_RUNTIME_ENV (docs/serving.md):
# BLAS threads spin on a busy node; malloc keeps freed memory instead of page-faulting per request.
ENV OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=67108864
EXPOSE 8080 8081

FROM servers AS predictor
RUN python -c "import model.model, onnxruntime, importlib.util as u; assert u.find_spec('torch') is None"
ENTRYPOINT ["python", "-m", "model"]
# KServe appends nothing when these are given; the chart passes the same flags explicitly.
CMD ["--model_name", "bukva", "--http_port", "8080", "--grpc_port", "8081"]

FROM servers AS transformer
RUN python -c "import transformer, kserve, importlib.util as u; assert u.find_spec('torch') is None"
ENTRYPOINT ["python", "-m", "transformer"]
CMD ["--model_name", "bukva", "--predictor_host", "bukva-predictor:80", "--predictor_protocol", "v2", \
     "--http_port", "8080", "--grpc_port", "8081"]

FROM component AS frontend
# A canvas drawing is a few kB: Streamlit refuses a browser message over 2 MB unread (its
# default is 200 MB); the app then refuses a PNG over 512 kB before decoding it.
ENV STREAMLIT_BROWSER_GATHER_USAGE_STATS=false STREAMLIT_SERVER_MAX_MESSAGE_SIZE=2
RUN python -c "import frontend.app, streamlit, importlib.util as u; assert u.find_spec('torch') is None and u.find_spec('kserve') is None"
# 8501: the app; 9102: its Prometheus /metrics (BUKVA_METRICS_PORT).
EXPOSE 8501 9102
ENTRYPOINT ["streamlit", "run", "frontend/app.py"]
CMD ["--server.port", "8501", "--server.address", "0.0.0.0", "--server.headless", "true"]
