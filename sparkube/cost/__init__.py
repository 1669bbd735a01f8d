"""Money: the ledger of billed facts (:mod:`.ledger`) and the one cost model that turns
it into dollars (:mod:`.model`). Collecting the facts from AWS, the bucket and the
cluster is :mod:`.collect`; everything here but that is pure and offline."""
