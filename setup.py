"""Installs boml: bilevel optimization for meta-learning on TensorFlow's graph mode."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _requirements():
    with open(os.path.join(HERE, "requirements.txt")) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def _readme():
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
        return handle.read()


setup(
    name="boml",
    version="0.2.0",
    description="Modularized bilevel optimization for meta-learning (MAML, RHG, HOAG, DARTS, BDA ...) "
                "on TensorFlow's graph mode",
    long_description=_readme(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=("tests", "tests.*", "examples", "benchmarks", "docs")),
    package_data={"boml.load_data.datasets": ["split_definitions/*.txt", "split_definitions/*/*.json"]},
    install_requires=_requirements(),
    # Optional: plot (python -m boml plot) and tensorboard (viewing the event files); the core needs numpy/TF only.
    # The test extra includes matplotlib so that the plotting code is tested.
    extras_require={"test": ["pytest>=7", "pytest-cov>=7", "coverage>=7.10", "ruff", "sphinx>=7", "matplotlib>=3.7"],
                    "docs": ["sphinx>=7"],
                    "plot": ["matplotlib>=3.7"],
                    "tensorboard": ["tensorboard>=2.16"]},
    entry_points={"console_scripts": ["boml=boml.__main__:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
