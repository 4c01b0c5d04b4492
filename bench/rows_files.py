def rows(ctx):
    return []
