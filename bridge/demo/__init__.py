"""What drives the sandbox WHMCS for people: ``vipgate demo`` (the story, :mod:`bridge.demo.story`,
played on the installation of :mod:`bridge.demo.installation`) and the set-up of ``vipgate
sandbox`` (:mod:`bridge.demo.sandbox`). The CLI reaches the sandbox only through this package;
production packages never import it."""
