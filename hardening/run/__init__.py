"""A run of the pipeline: the validated plan, the orchestrator over it, the run-directory store.

``store`` has no dependency on the stages, so scan, policy and release read and write run
directories without importing the orchestrator.
"""
