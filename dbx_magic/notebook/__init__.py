"""The notebook layer: the session, the magics, the form, the widgets and the displays.

The only layer that imports IPython or ipywidgets.
"""
