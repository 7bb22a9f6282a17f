"""Policy checks on built images and rendered Dockerfiles.

``interface`` defines ``ImageCheck`` and ``DockerfileCheck``; each check is one module whose
class carries its metadata; ``options`` holds the option shapes checks share; ``registry.CheckId``
lists every check explicitly; ``config`` reads and merges policies/*.yaml; ``service`` runs them.
"""
