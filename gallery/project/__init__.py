"""The project's configuration, apart from the app's code: settings read from the environment,
the root URLconf and the WSGI entry point (``DJANGO_SETTINGS_MODULE=gallery.project.settings``)."""
