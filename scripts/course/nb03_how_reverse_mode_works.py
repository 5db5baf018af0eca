FILENAME='03_how_reverse_mode_works.ipynb'
def build():
    from .cells import notebook, title
    return notebook('x', [title('t', ['g'])])
