# Makes the project root importable from tests/.
