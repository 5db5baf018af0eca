FILENAME='02_exploring_derivatives.ipynb'
def build():
    from .cells import notebook, title
    return notebook('x', [title('t', ['g'])])
