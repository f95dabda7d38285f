"""The dbt project (`dbt_project/`) as Dagster assets: staging, intermediate and marts."""
