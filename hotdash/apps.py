from django.apps import AppConfig


class HotdashConfig(AppConfig):
    name = "hotdash"
    verbose_name = "HotDash"
