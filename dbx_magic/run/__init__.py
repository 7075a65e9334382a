"""The run layer: parameters, the launch, the watched run and its polling policy, sweeps, results.

No IPython and no ipywidgets here: every face (magics, form, command line, Python) calls this layer.
"""
