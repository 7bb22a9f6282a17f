"""Policy checks on built images and rendered Dockerfiles.

``interface`` defines ``Check``; each check is one module; ``registry.CheckId`` lists them all
explicitly; ``config`` reads policies/*.yaml; ``service`` runs them for the CLI.
"""
