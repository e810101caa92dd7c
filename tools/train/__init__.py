"""The training path: compose a recipe (recipes), run a stage (runner) on an engine (engines/)."""
