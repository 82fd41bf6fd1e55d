"""What an operator deploys: the config file ``vipgate init`` writes (:mod:`.config_file`),
the systemd units and the nginx site ``vipgate deploy`` prints (:mod:`.units`; their
templates are package data in ``templates/``). docs/DEPLOY.md walks through them."""
