"""The scan workflow's state machine. Its states are built by :mod:`macie_pipeline.workflow`, which
reads like the diagram; this part gives them a Standard state machine, logs, and permissions.

Permissions of the Distributed Maps: CDK grants the role ``states:StartExecution`` on the state
machine and ``states:DescribeExecution``/``StopExecution``/``RedriveExecution`` on its executions
(the policy ``DistributedMapPolicy``); the workflow's item reader grants ``s3:GetObject`` on
``batches/*`` and the map runs' result writer ``s3:PutObject`` (and multipart) on ``map-results/*``
of the batch bucket. This part adds the batch bucket's KMS key."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn

from .. import defaults
from ..external import flatten_reference
from ..options import PipelineOptions
from ..props import value_of
from ..workflow import BATCH_PREFIX, MAP_RESULTS_PREFIX, ScanWorkflow, WorkflowResources, WorkflowSettings, job_arn_pattern
from .context import PartContext, acknowledge
from .functions import Functions
from .keys import Keys
from .macie_setup import MacieSetup
from .messaging import Messaging
from .zones import Zones


class Scan:
    """``state_machine`` (Standard) and its ``log_group``."""

    def __init__(
        self, ctx: PartContext, *, options: PipelineOptions, keys: Keys, zones: Zones, messaging: Messaging,
        macie: MacieSetup, functions: Functions,
    ) -> None:
        timing = options.timing
        workflow = ScanWorkflow(
            ctx.scope,
            "Workflow",
            resources=WorkflowResources(
                transfer=functions.transfer,
                integrity_check=functions.integrity_check,
                evaluate_findings=functions.evaluate_findings,
                request_review=functions.request_review,
                job_events=functions.job_events,
                batch_bucket=zones.batch_bucket,
                ingress_bucket=zones.ingress_bucket,
                quarantine_bucket=zones.quarantine_bucket,
                review_bucket=zones.review_bucket,
                vault_bucket=zones.vault_bucket,
                topic=messaging.topic,
                event_bus=messaging.event_bus,
                custom_data_identifier_ids=[c.attr_id for c in macie.custom_data_identifiers],
                allow_list_ids=[a.attr_id for a in macie.allow_lists],
                custom_data_identifier_arns=[c.attr_arn for c in macie.custom_data_identifiers],
                allow_list_arns=[a.attr_arn for a in macie.allow_lists],
            ),
            settings=WorkflowSettings(
                managed_data_identifier_selector=options.macie.selector,
                managed_data_identifier_ids=list(options.macie.managed_data_identifier_ids),
                poll_interval=timing.poll_interval,
                max_scan_wait=timing.max_scan_wait,
                approval_timeout=timing.approval_timeout,
                approval_heartbeat=timing.approval_heartbeat,
                deny_policy=value_of(options.verdicts.deny_policy),
                map_concurrency=options.map_concurrency,
            ),
        )
        self.log_group = defaults.log_group(ctx.scope, "WorkflowLogs", key=keys.operations_key, removal_policy=ctx.removal_policy)
        self.state_machine = sfn.StateMachine(
            ctx.scope,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(workflow.definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            timeout=Duration.seconds(int(timing.max_scan_wait.to_seconds() + timing.approval_timeout.to_seconds()) + 86400),
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            comment="SensitiveDataScanPipeline: one batch: stage, check integrity, one Macie scan, route by verdict, review",
        )
        #: How many times an execution describes its Macie job at most.
        self.max_polls = workflow.max_polls
        self.state_machine.grant_task_response(functions.review_api)
        # job_events' task-response permission is its own policy (Functions.bind_state_machine): in its
        # role's default policy it would make a cycle (the state machine invokes job_events).
        # The maps read the chunk index and write their results in the batch bucket (under its key).
        batch_key = zones.batch_bucket.encryption_key
        if batch_key is not None:
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[batch_key.key_arn])
            )
        # SnsPublish grants only sns:Publish; the topic is encrypted (with the operations key, unless
        # you passed a topic of your own).
        if messaging.topic_key is not None:
            self.state_machine.add_to_role_policy(
                iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[messaging.topic_key.key_arn])
            )
        self._acknowledge(ctx, zones, functions)

    def _acknowledge(self, ctx: PartContext, zones: Zones, functions: Functions) -> None:
        stack = ctx.stack
        role = self.state_machine.role
        for fn in functions.invoked_by_workflow:
            arn = f"<{stack.resolve(stack.get_logical_id(fn.node.default_child))}.Arn>"
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{arn}:*]",
                        "CDK's LambdaInvoke grant covers the function's versions (:*); only these functions are invocable.")
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(job_arn_pattern(stack)))}]",
                    "Macie classification jobs are created at run time, one per scan; their ids cannot be known at deploy time.")
        for prefix, what in ((BATCH_PREFIX, "reads each batch's chunk index"), (MAP_RESULTS_PREFIX, "writes its map runs' results")):
            arn = flatten_reference(stack.resolve(zones.batch_bucket.arn_for_objects(f"{prefix}*")))
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{arn}]",
                        f"The workflow {what} under {prefix} of the batch bucket; batch ids exist only at run time.")
        # CDK adds DistributedMapPolicy at synth: acknowledge its two findings by their exact ids.
        name = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"%s"}]}]}' % stack.resolve(
            stack.get_logical_id(self.state_machine.node.default_child))
        # A stack with an explicit environment has its Region and account literally in the ARN.
        region, account = (flatten_reference(stack.resolve(value)) for value in (stack.region, stack.account))
        executions = f"arn:<AWS::Partition>:states:{region}:{account}:execution:{name}"
        for resource in (f"{executions}:*", f"{executions}/*:*"):
            acknowledge(self.state_machine, f"AwsSolutions-IAM5[Resource::{resource}]",
                        "CDK's Distributed Map grant: describe, stop and redrive the child executions of this state machine "
                        "(execution:<this state machine>:*, and its map runs' children), whose names exist only at run time.")
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    "Step Functions log delivery (logs:*LogDelivery) and X-Ray have no resource-level permissions.")
