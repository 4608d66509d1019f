# AP per occlusion bucket after every val/test epoch (table in the log, scalars in the
# visualizer backends, plot and json in {work_dir}/occlusion/): the hook puts an OcclusionMetric
# beside the plain CocoMetric of the evaluator. Bins default to (0, 0.2, 0.4, 0.6, 0.8, 'inf');
# set bins=(...) to change them.
custom_imports = dict(imports=['plugin'], allow_failed_imports=False)
custom_hooks = [dict(type='OcclusionEvalHook')]
