"""The pytest plugin: settings (``_settings``), hooks (``_plugin``), fixtures (``_fixture``) and the glue for ``@given`` tests (``_hypothesis``)."""
