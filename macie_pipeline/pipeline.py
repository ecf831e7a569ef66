"""SensitiveDataScanPipeline: the L3 construct, a composition of parts (see ``macie_pipeline.parts``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .external import ExternalSetup, environment_differs, render_external_setup
from .options import OtherPipeline, PipelineOptions
from .parts.context import PartContext
from .parts.functions import Functions
from .parts.intake import Intake
from .parts.job_completion import JobCompletion
from .parts.keys import Keys
from .parts.macie_setup import MacieSetup
from .parts.messaging import Messaging
from .parts.operations import Operations
from .parts.policies import OneResourcePolicy
from .parts.review_api import ReviewApi
from .parts.reviewers import Reviewers
from .parts.scan import Scan
from .parts.zones import Zones
from .props import (
    AllowList,
    CustomDataIdentifier,
    DenyPolicy,
    FindingPolicy,
    ManagedDataIdentifierSelector,
    ObjectLock,
    Trigger,
    UnknownFormatPolicy,
)


class SensitiveDataScanPipeline(Construct):
    """A sensitive-data gate: ingress -> integrity check -> Macie scan -> vault, review or quarantine.

    Objects that land in the ingress bucket are copied (exact version) to the quarantine bucket,
    checked for integrity, scanned by a one-time Amazon Macie classification job scoped by a scan-id
    tag, and then promoted to the vault (clean), held in the review bucket for a person's decision
    (REVIEW), or kept in quarantine (DENY, CORRUPT). No path moves an object to the vault without a
    clean, complete scan or an explicit approval, and no path deletes an object that has not been
    copied and verified elsewhere.

    All settings are keyword-only; each states its default.

    :param removal_policy: what happens to buckets, keys, table and log groups when the stack is
        deleted. Default: ``RemovalPolicy.RETAIN`` (data outlives the stack).
    :param trigger: ``Trigger.on_object_created(prefix=, suffix=, batch_window=, max_batch_objects=,
        sweep_interval=, lost_event_age=)`` (default: new objects are queued and scanned in batches
        of up to 10,000 collected over 5 minutes, one execution and one Macie job per batch; a sweep
        every hour catches objects whose event was lost) or ``Trigger.on_schedule(schedule, prefix=,
        max_batch_objects=)`` (a sweep of the whole ingress bucket, default every 6 h).
    :param custom_data_identifiers: your own Macie identifiers. Default: none.
    :param allow_lists: text Macie must not report, as regexes. Default: none.
    :param managed_data_identifier_selector: Default: ``RECOMMENDED``.
    :param managed_data_identifier_ids: with INCLUDE or EXCLUDE only. Default: none.
    :param finding_policy: severity -> ALLOW/REVIEW/DENY. Default: every finding needs REVIEW.
    :param unknown_format_policy: what an object the integrity check cannot parse needs.
        Default: ``UnknownFormatPolicy.REVIEW``.
    :param deny_policy: denied or unanswered reviews. Default: ``DenyPolicy.QUARANTINE``.
    :param poll_interval: the backstop: how long the workflow waits for a job event before it checks
        the Macie job itself. At most 1,000 checks per scan (``max_scan_wait / poll_interval``).
        Default: 15 minutes.
    :param max_scan_wait: after this the job is cancelled and every object goes to review.
        Default: 6 hours.
    :param approval_timeout: no decision by then is a denial. Default: 3 days.
    :param approval_heartbeat: optional heartbeat for the approval task (something must call
        SendTaskHeartbeat more often than this). Default: none.
    :param chunk_objects: objects per chunk (one child workflow, one bulk invocation per step),
        1-1,000. Default: 200.
    :param map_concurrency: chunks processed at the same time by each Distributed Map, 1-1,000.
        Default: 10.
    :param job_completion_events: subscribe to Macie's job log events (``/aws/macie/classificationjobs``,
        created if missing and never deleted) so that a batch resumes as soon as its job ends.
        CloudWatch Logs allows 2 subscription filters per log group and each pipeline uses one: a
        third pipeline in the same account and Region must set False (then the ``poll_interval``
        backstop alone notices a job's end). Default: True.
    :param notification_emails: subscribed to the notification topic (each must confirm).
        Default: none.
    :param vault_object_lock: ``ObjectLock(mode, retention)`` for the vault. Default: no lock.
    :param create_macie_session: enable Macie in this account and Region. Default: False (most
        accounts already have it; a second session fails the deployment).
    :param configure_discovery_results: create a results bucket and set the account's Macie
        classification export configuration to it (one setting per account and Region).
        Default: False.
    :param discovery_results_bucket: with ``discovery_results_key``: where the account's Macie
        discovery results already go; the evaluator gets read access. Default: none (then, unless
        ``configure_discovery_results``, the location is read at run time and the evaluator must be
        granted access by you: until then every object goes to review).
    :param discovery_results_key: the KMS key of those results. Default: none.
    :param reviewer_user_pool: with ``reviewer_user_pool_client`` and ``reviewer_sign_in_url``: your
        own Cognito user pool for reviewers (for example one that federates your SAML or OIDC identity
        provider). Its app client must be public (no secret), allow the authorization code grant with
        the ``openid`` and ``email`` scopes and have :attr:`review_signed_in_url` as a callback URL; the
        pool must be in this stack's Region. Default: a created pool (no self sign-up, 14-character
        passwords of all classes, TOTP MFA required, threat protection, deletion protection), its
        managed login and a public app client.
    :param reviewer_user_pool_client: the app client of ``reviewer_user_pool``. Default: created.
    :param reviewer_sign_in_url: the ``https://`` base URL of ``reviewer_user_pool``'s managed login
        (its Cognito or custom domain). Default: the created pool's.
    :param reviewers_group: the Cognito group whose members may decide reviews (created in the created
        pool; must exist in yours). Default: ``"reviewers"``.
    :param review_approvals_required: 1, or 2 for four eyes: an object is approved only when two
        different reviewers have approved it; one deny denies it. Default: 1.
    :param pandas_layer: a prebuilt layer with pandas + fastparquet for Python 3.12 x86_64.
        Default: built at synth time with pip (no Docker), cached.
    :param runtime_layer: a prebuilt layer with Powertools and ``pipeline_common``.
        Default: built at synth time with pip, cached.
    :param sign_in_layer: a prebuilt layer with PyJWT and cryptography (the review function's token
        verification). Default: built at synth time with pip, cached.
    :param ingress_bucket: an existing, versioned bucket to watch instead of a created one (same
        account and Region). Default: created.
    :param vault_bucket: an existing, versioned bucket for clean and approved objects. Default: created.
    :param encryption_key: the KMS key of the construct's own data buckets (quarantine, review, and
        ingress, vault, discovery results when created), which Macie's service-linked role must be
        able to decrypt. Default: a created key.
    :param topic: an existing standard topic for review requests, summaries, failures and alarms.
        Import an encrypted one with ``Topic.from_topic_attributes(topic_arn=, key_arn=)``.
        Default: created.
    :param event_bus: where result events go. Default: the account's default bus.
    :param externally_managed: the names of the settings above whose resource is imported and whose
        missing policies or settings (see :attr:`external_setup`) you apply yourself. Construction
        fails while an imported resource that needs something is not named here. Default: none.
    :param review_api_iam_auth: removed in 0.x (a browser cannot sign IAM requests); any value raises
        a ``TypeError`` naming the reviewer settings that replace it.

    A resource you pass is *owned* when it is an L2 (``s3.Bucket``, ``kms.Key``, ``sns.Topic``,
    ``events.EventBus``) of the pipeline's stack: the construct changes it as it changes its own
    (bucket, key and topic policy statements, EventBridge notifications). Anything else is
    *imported*: nothing is changed on it, and :attr:`external_setup` lists what it needs.
    """

    #: Attributes with stable names. The interface types are what is promised: a bucket you pass
    #: in is exposed as you passed it.
    ingress_bucket: s3.IBucket
    quarantine_bucket: s3.IBucket
    review_bucket: s3.IBucket
    vault_bucket: s3.IBucket
    access_logs_bucket: s3.IBucket
    data_key: kms.IKey
    operations_key: kms.IKey
    topic: sns.ITopic
    event_bus: events.IEventBus
    state_table: dynamodb.ITable
    state_machine: sfn.IStateMachine
    review_api: apigw.RestApi
    review_api_url: str
    trigger_rule: events.IRule
    alarms: list[cloudwatch.IAlarm]
    batch_bucket: s3.IBucket
    job_events_function: lambda_.IFunction
    intake_queue: Optional[sqs.IQueue]
    intake_dead_letter_queue: Optional[sqs.IQueue]
    sweep_rule: Optional[events.IRule]

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        trigger: Optional[Trigger] = None,
        custom_data_identifiers: Sequence[CustomDataIdentifier] = (),
        allow_lists: Sequence[AllowList] = (),
        managed_data_identifier_selector: ManagedDataIdentifierSelector = ManagedDataIdentifierSelector.RECOMMENDED,
        managed_data_identifier_ids: Sequence[str] = (),
        finding_policy: Union[FindingPolicy, Mapping[str, Any], None] = None,
        unknown_format_policy: UnknownFormatPolicy = UnknownFormatPolicy.REVIEW,
        deny_policy: DenyPolicy = DenyPolicy.QUARANTINE,
        poll_interval: Duration = Duration.minutes(15),
        max_scan_wait: Duration = Duration.hours(6),
        approval_timeout: Duration = Duration.days(3),
        approval_heartbeat: Optional[Duration] = None,
        chunk_objects: int = 200,
        map_concurrency: int = 10,
        job_completion_events: bool = True,
        notification_emails: Sequence[str] = (),
        vault_object_lock: Optional[ObjectLock] = None,
        create_macie_session: bool = False,
        configure_discovery_results: bool = False,
        discovery_results_bucket: Optional[s3.IBucket] = None,
        discovery_results_key: Optional[kms.IKey] = None,
        reviewer_user_pool: Optional[cognito.IUserPool] = None,
        reviewer_user_pool_client: Optional[cognito.IUserPoolClient] = None,
        reviewer_sign_in_url: Optional[str] = None,
        reviewers_group: str = "reviewers",
        review_approvals_required: int = 1,
        pandas_layer: Optional[lambda_.ILayerVersion] = None,
        runtime_layer: Optional[lambda_.ILayerVersion] = None,
        sign_in_layer: Optional[lambda_.ILayerVersion] = None,
        ingress_bucket: Optional[s3.IBucket] = None,
        vault_bucket: Optional[s3.IBucket] = None,
        encryption_key: Optional[kms.IKey] = None,
        topic: Optional[sns.ITopic] = None,
        event_bus: Optional[events.IEventBus] = None,
        externally_managed: Sequence[str] = (),
        review_api_iam_auth: Any = None,
    ) -> None:
        super().__init__(scope, id)
        # Access log delivery through a bucket policy, not the legacy LogDeliveryWrite ACL (which
        # conflicts with bucket-owner-enforced ownership), whatever the consumer app's feature flags.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        # Every keyword argument, by name: grouped into option objects that check themselves.
        settings = {name: value for name, value in locals().items() if name not in ("self", "scope", "id", "__class__")}
        options = PipelineOptions.from_settings(settings)
        owner = options.validate(Stack.of(self), self._other_pipelines())
        #: Every setting, grouped by concern (see ``macie_pipeline.options``).
        self.options = options
        #: (configure_discovery_results, create_macie_session): account-wide settings other
        #: pipelines of the app must not repeat.
        self._account_settings = (configure_discovery_results, create_macie_session)
        ctx = self._ctx = PartContext(self, removal_policy, owner)
        self.node.add_validation(OneResourcePolicy(
            self, owner, lambda: {"vault_bucket": self.vault_bucket, "ingress_bucket": self.ingress_bucket, "topic": self.topic}
        ))

        keys = Keys(ctx, encryption_key=encryption_key)
        zones = Zones(ctx, data_key=keys.data_key, options=options.zones, trigger_kind=options.trigger_kind,
                      ingress_bucket=ingress_bucket, vault_bucket=vault_bucket, claim_ttl_seconds=options.timing.claim_ttl_seconds())
        messaging = Messaging(ctx, operations_key=keys.operations_key, topic=topic, event_bus=event_bus,
                              notification_emails=notification_emails)
        macie = MacieSetup(ctx, options=options.macie, results=options.discovery_results, zones=zones, data_key=keys.data_key)
        functions = Functions(ctx, options=options, keys=keys, zones=zones, messaging=messaging, macie=macie)
        review = ReviewApi(ctx, handler=functions.review_api, operations_key=keys.operations_key)
        reviewers = Reviewers(ctx, options=options.review, signed_in_url=review.signed_in_url)
        functions.set_review_api_url(review.url)
        functions.set_sign_in(user_pool_id=reviewers.user_pool.user_pool_id,
                              user_pool_client_id=reviewers.client.user_pool_client_id,
                              sign_in_url=reviewers.sign_in_url, signed_in_url=review.signed_in_url)
        self._reviewers = reviewers
        scan = Scan(ctx, options=options, keys=keys, zones=zones, messaging=messaging, macie=macie, functions=functions)
        functions.bind_state_machine(scan.state_machine)
        zones.guard_zones(functions.transfer.role)
        zones.guard_batch_files(functions.batch_file_writers(), scan.state_machine.role)
        messaging.allow_results_from(scan.state_machine.role, functions.transfer.role, functions.evaluate_findings.role)
        intake = Intake(ctx, trigger=options.trigger, key=keys.operations_key, ingress_bucket=zones.ingress_bucket,
                        prepare_scan=functions.prepare_scan)
        job_completion = JobCompletion(ctx, job_events=functions.job_events, enabled=options.job_completion_events)
        operations = Operations(ctx, trigger=options.trigger, state_machine=scan.state_machine, intake=intake,
                                topic=messaging.topic, functions=functions)
        self._expose(keys, zones, messaging, macie, functions, review, scan, operations)
        self._expose_batching(zones, functions, intake, job_completion)

    def _expose(self, keys: Keys, zones: Zones, messaging: Messaging, macie: MacieSetup, functions: Functions,
                review: ReviewApi, scan: Scan, operations: Operations) -> None:
        """The attributes users wire to, under the names the construct has always used."""
        self._review = review
        self.data_key, self.operations_key = keys.data_key, keys.operations_key
        self.access_logs_bucket, self.ingress_bucket = zones.access_logs_bucket, zones.ingress_bucket
        self.quarantine_bucket, self.review_bucket, self.vault_bucket = zones.quarantine_bucket, zones.review_bucket, zones.vault_bucket
        self.topic, self.state_table, self.event_bus = messaging.topic, messaging.state_table, messaging.event_bus
        self.custom_data_identifiers, self.allow_lists = macie.custom_data_identifiers, macie.allow_lists
        self.discovery_results_bucket = macie.discovery_results_bucket
        self.finding_policy = self.options.verdicts.resolved_finding_policy()
        self.prepare_scan_function, self.transfer_function = functions.prepare_scan, functions.transfer
        self.integrity_function, self.evaluate_function = functions.integrity_check, functions.evaluate_findings
        self.request_review_function, self.review_api_function = functions.request_review, functions.review_api
        self.review_api, self.review_api_url = review.api, review.url
        #: The callback URL of the reviewers' sign-in (register it with your own app client).
        self.review_signed_in_url = review.signed_in_url
        reviewers = self._reviewers
        self.reviewer_user_pool, self.reviewer_user_pool_client = reviewers.user_pool, reviewers.client
        self.reviewer_sign_in_url, self.reviewers_group_name = reviewers.sign_in_url, reviewers.group_name
        self.state_machine, self.state_machine_log_group = scan.state_machine, scan.log_group
        self.trigger_rule, self.alarms = operations.trigger_rule, operations.alarms

    def _expose_batching(self, zones: Zones, functions: Functions, intake: Intake, job_completion: JobCompletion) -> None:
        """The attributes of batch scanning: the batch bucket, the job events function, the intake queues
        and sweep rule (None with a schedule trigger), the subscription to Macie's job events (None
        with ``job_completion_events=False``)."""
        self.batch_bucket = zones.batch_bucket
        self.job_events_function = functions.job_events
        self.intake_queue, self.intake_dead_letter_queue = intake.queue, intake.dead_letter_queue
        self.sweep_rule = intake.sweep_rule
        self.job_events_subscription = job_completion.subscription_filter

    def _other_pipelines(self) -> list[OtherPipeline]:
        """The pipelines already in this app (their settings must not clash with this one's)."""
        stack = Stack.of(self)
        others = []
        for construct in self.node.root.node.find_all():
            if construct is self or not isinstance(construct, SensitiveDataScanPipeline):
                continue
            settings = getattr(construct, "_account_settings", None)
            same_environment = settings is not None and not environment_differs(Stack.of(construct), stack)
            configures, creates = settings if settings is not None else (False, False)
            others.append(OtherPipeline(
                path=construct.node.path, same_environment=same_environment, configures_discovery_results=configures,
                creates_macie_session=creates, ingress_bucket=getattr(construct, "ingress_bucket", None),
                vault_bucket=getattr(construct, "vault_bucket", None),
            ))
        return others

    # ------------------------------------------------------------------ helpers for users
    @property
    def encryption_key(self) -> kms.IKey:
        """The key of the construct's data buckets (the one you passed, or the created data key)."""
        return self.data_key

    @property
    def external_setup(self) -> list[ExternalSetup]:
        """What you must apply yourself to the imported resources you passed in: policy statements the
        construct cannot add, and settings it cannot change. Empty when nothing you passed is imported.

        Each item's ``statements`` are ``iam.PolicyStatement`` objects: add them in CDK to the stack that
        owns the resource (in the same app they resolve across stacks), or see :meth:`external_setup_json`.
        """
        return list(self._ctx.external_setup)

    def external_setup_json(self, *, indent: Optional[int] = 2) -> str:
        """:attr:`external_setup` as JSON, without any CfnOutput. References to resources the pipeline
        creates appear as ``${LogicalId.Arn}`` (the attribute of the deployed resource with that logical
        id in this stack) and pseudo parameters as ``${AWS::AccountId}``, ``${AWS::Region}``..."""
        return render_external_setup(self._ctx.external_setup, Stack.of(self), indent=indent)

    def grant_ingress_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` upload objects to the ingress bucket (and encrypt with its key, if known)."""
        return self.ingress_bucket.grant_put(grantee)

    def grant_vault_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read clean or approved objects from the vault (and decrypt them, if the key is known)."""
        return self.vault_bucket.grant_read(grantee)

    def metric_executions_failed(self, **kwargs) -> cloudwatch.Metric:
        """Failed scan executions (objects are held, people were told)."""
        return self.state_machine.metric_failed(**kwargs)
