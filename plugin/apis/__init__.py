from .runner import SCOPES, add_runner_args, build_runner, load_config

__all__ = ['SCOPES', 'add_runner_args', 'build_runner', 'load_config']
