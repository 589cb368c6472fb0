# gr-ncsc: every target installs what is missing first (idempotent).
#   make demo    run examples/loopback_awgn.py (the whole link on one image)
#   make test    run the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := gnuradio gnuradio-dev gr-osmosdr cmake gcc python3-venv python3-gi python3-gi-cairo gir1.2-gtk-3.0 xvfb
SITE := $(VENV)/lib/python3.11/site-packages
STAMP := $(VENV)/.ncsc-setup
PYTEST_ARGS ?=
KERNELS := $(VENV)/.ncsc-kernels
KERNEL_SRC := python/ncsc/phy/kernels.py python/ncsc/dsp.py python/ncsc/modulation/kernels.py \
	python/ncsc/fec/decoder.py python/ncsc/codec/entropy.py
# The LDPC C kernel (AVX-512 where the CPU has it; a stub elsewhere, then numba decodes).
LDPC_SO := python/ncsc/fec/_ldpc_qc.so
CC ?= cc
NCSC_CFLAGS ?= -O3 -march=native -Wall

.PHONY: setup apt venv demo test lint bench-link bench-codec bench-ota bench-rx bench-gui bench-table1 bench-determinism bench-train-step train train-msssim burst-pack burst-unpack plot-training install clean

setup: apt $(STAMP) $(LDPC_SO) $(KERNELS)
	@test -L $(SITE)/gnuradio/ncsc || (mkdir -p $(SITE)/gnuradio && ln -sfn $(CURDIR)/python/ncsc $(SITE)/gnuradio/ncsc)
	@$(PY) -c "from gnuradio import gr, ncsc; print('gr-ncsc ready: GNU Radio', gr.version())"

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): requirements.txt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@mkdir -p $(SITE)/gnuradio && ln -sfn $(CURDIR)/python/ncsc $(SITE)/gnuradio/ncsc
	@touch $(STAMP)

# numba compiles a kernel at its first call: compile them all here, once per change of their
# sources, not inside the first flowgraph or test (30-70 s on 2 cores)
$(KERNELS): $(KERNEL_SRC) $(STAMP)
	$(PY) -m gnuradio.ncsc.precompile
	@touch $@

$(LDPC_SO): python/ncsc/fec/ldpc_qc.c
	$(CC) $(NCSC_CFLAGS) -shared -fPIC -o $@ $< -lm

demo: setup
	$(PY) examples/loopback_awgn.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check python tests examples

bench-link: setup
	$(PY) -m gnuradio.ncsc.bench.link

bench-codec: setup
	$(PY) -m gnuradio.ncsc.bench.codec

bench-ota: setup
	$(PY) -m gnuradio.ncsc.bench.ota

bench-rx: setup
	$(PY) -m gnuradio.ncsc.bench.rx

bench-gui: setup
	$(PY) -m gnuradio.ncsc.bench.gui

bench-table1: setup
	$(PY) -m gnuradio.ncsc.bench.table1

bench-train-step: setup
	$(PY) -m gnuradio.ncsc.bench.trainstep

bench-determinism: setup
	$(PY) -m gnuradio.ncsc.bench.determinism --images ../shared/data/kodak

# Training resumes from its checkpoint (kept out of git, under ~/.cache/gr-ncsc).
# QUANT=hard runs the final stage (analysis frozen, latents rounded) before an export.
CKPT ?= $(HOME)/.cache/gr-ncsc
# LMBDA=x trains at another rate-distortion trade-off (a checkpoint keeps its own otherwise).
QUANT ?= mixed
LMBDA ?=
# Without a checkpoint, a run starts from the shipped weights (and their lambda).
THREADS ?= 1
TRAIN_ARGS = --quant $(QUANT) --threads $(THREADS) $(if $(LMBDA),--lmbda $(LMBDA))
train: setup
	$(PY) -m gnuradio.ncsc.train --metric mse $(TRAIN_ARGS) --out $(CKPT)/train-mse \
		--init weights/ncsc-mse-q1.pth.gz

train-msssim: setup
	$(PY) -m gnuradio.ncsc.train --metric ms-ssim $(TRAIN_ARGS) --out $(CKPT)/train-msssim \
		--init weights/ncsc-msssim-q1.pth.gz

# The accelerator burst (docs/training.md): pack here, run on the GPU machine, unpack here.
# CHECKPOINT=path starts the burst from a checkpoint if it fits; SRC= the folder brought back.
burst-pack: setup
	$(PY) -m gnuradio.ncsc.train_burst pack $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT))

burst-unpack: setup
	$(PY) -m gnuradio.ncsc.train_burst unpack $(SRC) --out $(CKPT)/train-mse

# results/training.png and training.csv from the two runs' logs
plot-training: setup
	$(PY) -m gnuradio.ncsc.bench.training --run mse=$(CKPT)/train-mse --run ms-ssim=$(CKPT)/train-msssim

install: apt
	cmake -S . -B build && cmake --build build && cmake --install build

clean:
	rm -rf build python/ncsc/fec/_ldpc_qc.so
