"""The parts SensitiveDataScanPipeline is composed of, one concern each.

Each part is a plain class (not a construct): it builds its resources directly in the pipeline's
scope, so every logical ID is the one the construct always had. A part owns its resources and the
cdk-nag acknowledgements of those resources, and hands the other parts only what they need.

========================  ==============================================================
:mod:`.context`           what every part shares: scope, removal policy, ownership of what
                          you passed in, and the record of what you must apply yourself
:mod:`.keys`              the data key and the operations key
:mod:`.zones`             the buckets: access logs, ingress, quarantine, review, vault
:mod:`.messaging`         the topic, the state table, the event bus
:mod:`.macie_setup`       Macie session, custom data identifiers, allow lists, discovery results
:mod:`.functions`         layers, the six functions, each with its environment and IAM
:mod:`.review_api`        the reviewers' API
:mod:`.scan`              the scan workflow's state machine (its states: ``macie_pipeline.workflow``)
:mod:`.operations`        the trigger and the alarms
:mod:`.policies`          the synth-time check that the pipeline's resource policies stay the only ones
========================  ==============================================================
"""
