# The two commands of the README: `make demo` and `make test`. Both set the environment up first.
PY := .venv/bin/python
DEMO_DATA := data/occlusion_shapes
DEMO_CFG := configs/demo/retinanet_tiedresnet-tiny_fpn_1x_occshapes.py
DEMO_DIR := work_dirs/demo

.PHONY: setup demo test bench clean-demo

setup:
	@tools/setup_env.sh

$(DEMO_DATA)/annotations/instances_val.json:
	$(PY) tools/dataset/make_occlusion_shapes.py --out $(DEMO_DATA) --num-train 240 --num-val 100 --size 256 --seed 0

demo: setup $(DEMO_DATA)/annotations/instances_val.json
	@tools/run_demo.sh $(PY) $(DEMO_CFG) $(DEMO_DATA) $(DEMO_DIR)

test: setup
	@.venv/bin/python -m pytest tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests"; fi; exit $$rc

clean-demo:
	rm -rf $(DEMO_DIR)
