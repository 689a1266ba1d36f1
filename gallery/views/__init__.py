"""Views of the app origin, by audience: ``public`` (front page, gallery pages, plugins, health),
``embeds`` (embed panel, oEmbed, ``/embed.js``), ``reports`` (the report form), ``publish`` (the
publish form), ``builds`` (build pages), ``mine`` (a publisher's galleries and management links).

Nothing here serves uploaded bytes or bundle files; ``gallery.content`` does, on each gallery's
own origin.
"""
