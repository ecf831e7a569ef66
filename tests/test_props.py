"""Settings validation: every problem is collected and reported in one ValueError, before any resource."""

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from macie_pipeline import (
    AllowList,
    CustomDataIdentifier,
    FindingAction,
    FindingPolicy,
    ManagedDataIdentifierSelector,
    ObjectLock,
    SensitiveDataScanPipeline,
    Trigger,
)


def _build(**settings):
    stack = cdk.Stack(cdk.App(), "PropsTest")
    SensitiveDataScanPipeline(stack, "Pipeline", **settings)
    return stack


def test_every_conflict_is_reported_at_once_before_anything_is_built():
    stack = cdk.Stack(cdk.App(), "PropsTest")
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(
            stack,
            "Pipeline",
            custom_data_identifiers=[
                CustomDataIdentifier(name="Bad id!", regex="EMP-([0-9", keywords=["ok-word", "no"], maximum_match_distance=0),
                CustomDataIdentifier(name="Twice", regex="a+"),
                CustomDataIdentifier(name="Twice", regex="b+"),
            ],
            allow_lists=[AllowList(name="List", regex="(unclosed")],
            managed_data_identifier_selector=ManagedDataIdentifierSelector.INCLUDE,
            finding_policy=FindingPolicy(high="BLOCK"),
            poll_interval=Duration.minutes(10),
            max_scan_wait=Duration.minutes(5),
            approval_timeout=Duration.hours(1),
            approval_heartbeat=Duration.hours(2),
            notification_emails=["not-an-address"],
            configure_discovery_results=True,
            discovery_results_bucket=object(),
        )
    message = str(raised.value)
    expected = [
        "custom_data_identifiers[0] ('Bad id!'): name must be 1-128 letters, digits, spaces, '_', '.' or '-'",
        "custom_data_identifiers[0] ('Bad id!'): invalid regex 'EMP-([0-9': unterminated character set",
        "custom_data_identifiers[0] ('Bad id!').keywords: 'no' must be 3-90 characters",
        "custom_data_identifiers[0] ('Bad id!'): maximum_match_distance must be an integer from 1 to 300",
        "custom_data_identifiers[2] ('Twice'): duplicate name",
        "allow_lists[0] ('List'): invalid regex '(unclosed': missing ), unterminated subpattern",
        "managed_data_identifier_selector INCLUDE needs managed_data_identifier_ids",
        "finding_policy.high must be one of ALLOW, REVIEW, DENY, got 'BLOCK'",
        "max_scan_wait must be at least poll_interval",
        "approval_heartbeat must be shorter than approval_timeout",
        "notification_emails: 'not-an-address' is not an email address",
        "configure_discovery_results creates its own results bucket and key: do not also pass discovery_results_bucket or discovery_results_key",
        "discovery_results_bucket and discovery_results_key go together",
    ]
    for line in expected:
        assert f"- {line}" in message, line
    assert message.count("\n- ") == len(expected)
    # Nothing was built: validation runs before the first resource.
    assert [c.node.id for c in stack.node.find_child("Pipeline").node.children] == []


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"trigger": Trigger.on_schedule(max_batch_objects=0)}, "trigger max_batch_objects must be from 1 to 10,000"),
        ({"trigger": Trigger.on_object_created(max_batch_objects=10_001)}, "trigger max_batch_objects must be from 1 to 10,000"),
        ({"trigger": Trigger.on_object_created(batch_window=Duration.minutes(6))},
         "trigger batch_window must be whole seconds from 0 to 300 (0: one object per scan)"),
        ({"trigger": Trigger.on_object_created(batch_window=Duration.millis(1500))},
         "trigger batch_window must be whole seconds from 0 to 300"),
        ({"trigger": Trigger.on_object_created(sweep_interval=Duration.seconds(90))},
         "trigger sweep_interval must be whole minutes, at least 1 minute (an EventBridge schedule)"),
        ({"trigger": Trigger.on_object_created(lost_event_age=Duration.seconds(30))}, "trigger lost_event_age must be at least 1 minute"),
        ({"trigger": Trigger.on_object_created(batch_window=Duration.minutes(5), lost_event_age=Duration.minutes(5))},
         "trigger lost_event_age must be longer than batch_window"),
        ({"chunk_objects": 0}, "chunk_objects must be from 1 to 1,000, got 0"),
        ({"chunk_objects": 1001}, "chunk_objects must be from 1 to 1,000, got 1001"),
        ({"map_concurrency": 0}, "map_concurrency must be from 1 to 1,000, got 0"),
        ({"map_concurrency": 5000}, "map_concurrency must be from 1 to 1,000, got 5000"),
        ({"poll_interval": Duration.seconds(10), "max_scan_wait": Duration.hours(6)},
         "max_scan_wait / poll_interval must be at most 1,000 job checks, got 2,160"),
        ({"poll_interval": Duration.seconds(5)}, "poll_interval must be at least 10 seconds"),
        ({"approval_timeout": Duration.days(400)}, "approval_timeout must be at most 365 days"),
        ({"managed_data_identifier_ids": ["CREDIT_CARD_NUMBER"]}, "managed_data_identifier_ids only apply with INCLUDE or EXCLUDE, not RECOMMENDED"),
        ({"managed_data_identifier_selector": "NONE"}, "managed_data_identifier_selector NONE needs at least one custom data identifier"),
        ({"vault_object_lock": ObjectLock(retention=Duration.hours(1))}, "vault_object_lock.retention must be at least 1 day"),
        ({"deny_policy": "SHRED"}, "deny_policy must be one of QUARANTINE, DELETE, got 'SHRED'"),
        ({"custom_data_identifiers": [CustomDataIdentifier(name="Long", regex="x" * 513)]}, "regex is 513 characters, Macie allows at most 512"),
    ],
)
def test_single_problems_are_named(settings, problem):
    with pytest.raises(ValueError, match="Invalid SensitiveDataScanPipeline settings") as raised:
        _build(**settings)
    assert problem in str(raised.value)


def test_trigger_defaults_and_their_event_source_mapping_settings():
    created = Trigger.on_object_created()
    assert (created.max_batch_objects, created.batch_window.to_seconds(), created.sweep_interval.to_seconds(),
            created.lost_event_age.to_seconds()) == (10_000, 300, 3600, 3600)
    assert (created.batch_size, created.batch_window_seconds) == (10_000, 300)
    # A window of zero is one object per scan: SQS allows a batch of more than 10 only with a window.
    single = Trigger.on_object_created(batch_window=Duration.seconds(0), max_batch_objects=500)
    assert (single.batch_size, single.batch_window_seconds) == (1, 0)
    assert Trigger.on_schedule().max_batch_objects == 10_000


def test_trigger_durations_are_type_checked():
    with pytest.raises(TypeError) as raised:
        _build(trigger=Trigger.on_object_created(batch_window=300, sweep_interval="1h"))
    assert "- trigger batch_window must be a Duration, got int 300" in str(raised.value)
    assert "- trigger sweep_interval must be a Duration, got str '1h'" in str(raised.value)


def test_the_poll_backstop_keeps_the_history_bounded_at_the_limit():
    _build(poll_interval=Duration.minutes(1), max_scan_wait=Duration.minutes(1000))  # exactly 1,000 checks
    with pytest.raises(ValueError, match="got 1,001"):
        _build(poll_interval=Duration.minutes(1), max_scan_wait=Duration.minutes(1001))


def test_finding_policy_accepts_enum_members_and_serialises_for_the_evaluator():
    policy = FindingPolicy(low=FindingAction.ALLOW, medium=FindingAction.REVIEW, high=FindingAction.DENY)
    assert policy.as_dict() == {"LOW": "ALLOW", "MEDIUM": "REVIEW", "HIGH": "DENY"}


# ---------------------------------------------------------------------- existing resources, Macie's regex dialect
ENV = cdk.Environment(account="111122223333", region="eu-west-1")


def test_every_bring_your_own_conflict_is_reported_at_once():
    stack = cdk.Stack(cdk.App(), "ByoProps", env=ENV)
    bucket = s3.Bucket.from_bucket_name(stack, "Bucket", "one-bucket")
    same_bucket = s3.Bucket.from_bucket_name(stack, "SameBucket", "one-bucket")
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(
            stack,
            "Pipeline",
            ingress_bucket=bucket,
            vault_bucket=same_bucket,
            vault_object_lock=ObjectLock(),
            discovery_results_bucket=bucket,
            discovery_results_key=kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:eu-west-1:111122223333:key/k"),
            topic=sns.Topic.from_topic_arn(stack, "Fifo", "arn:aws:sns:eu-west-1:111122223333:alerts.fifo"),
            event_bus="default",
            externally_managed=["ingress_bucket", "vault_bucket", "queue", "encryption_key"],
        )
    assert str(raised.value) == "\n- ".join([
        "Invalid SensitiveDataScanPipeline settings:",
        "event_bus must be an events.IEventBus",
        "ingress_bucket and vault_bucket must be different buckets",
        "discovery_results_bucket must not be the ingress or vault bucket: Macie would write its results into a pipeline zone",
        "vault_object_lock applies only to a vault the construct creates: set Object Lock on your vault_bucket",
        "topic must be a standard topic: a FIFO topic needs a message group id, which the pipeline does not send",
        "externally_managed: unknown setting 'queue', expected one of ingress_bucket, vault_bucket, encryption_key, topic, event_bus",
        "externally_managed lists 'encryption_key', but no encryption_key is given",
        "topic is imported: the construct cannot add the topic policy statement that lets CloudWatch alarms publish. "
        "Add 'topic' to externally_managed and apply what external_setup lists for it",
    ])
    assert [c.node.id for c in stack.node.find_child("Pipeline").node.children] == []


def test_owned_resources_regex_dialect_and_finding_policy_mapping_problems():
    stack = cdk.Stack(cdk.App(), "ByoProps", env=ENV)
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(
            stack,
            "Pipeline",
            ingress_bucket=s3.Bucket.from_bucket_attributes(stack, "Elsewhere", bucket_name="elsewhere", account="999999999999"),
            vault_bucket=s3.Bucket(stack, "Unversioned"),
            encryption_key=kms.Key(stack, "OwnKey"),
            externally_managed=["encryption_key"],
            finding_policy={"low": "ALLOW", "CRITICAL": "DENY", "LOW": "DENY"},
            custom_data_identifiers=[
                CustomDataIdentifier(name="Look", regex=r"(?<=EMP-)[0-9]+"),
                CustomDataIdentifier(name="Back", regex=r"(?i)(a)\1"),
            ],
            # PCRE that Python's re does not know is not an error: \p{..}, \h, (?<name>...), \Q...\E.
            allow_lists=[AllowList(name="Pcre", regex=r"\p{Lu}\h+(?<id>EMP)\Q.\E[0-9]{4}")],
        )
    assert str(raised.value) == "\n- ".join([
        "Invalid SensitiveDataScanPipeline settings:",
        "custom_data_identifiers[0] ('Look'): regex uses a lookbehind ('(?<='), which Macie does not support",
        "custom_data_identifiers[1] ('Back'): regex uses a global pattern flag ('(?i)'), which Macie does not support",
        "custom_data_identifiers[1] ('Back'): regex uses a backreference ('\\\\1'), which Macie does not support",
        "finding_policy: unknown severity 'CRITICAL' (Macie severities are LOW, MEDIUM, HIGH)",
        "finding_policy: severity 'LOW' is given twice",
        "ingress_bucket must be in the pipeline's account and Region",
        "vault_bucket must have versioning enabled (versioned=True): the pipeline pins and verifies object versions",
        "externally_managed lists 'encryption_key', but the construct applies everything encryption_key needs: remove it",
        "ingress_bucket is imported: the construct cannot turn on its EventBridge notifications or check that it is "
        "versioned. Add 'ingress_bucket' to externally_managed and apply what external_setup lists for it",
    ])


@pytest.mark.parametrize(
    "regex, problem",
    [
        (r"EMP-(?=[0-9])", "regex uses a lookahead ('(?='), which Macie does not support"),
        (r"(a)(?(1)b|c)", "regex uses a conditional pattern ('(?('), which Macie does not support"),
        (r"a(?R)?z", "regex uses a recursive pattern ('(?R)'), which Macie does not support"),
        (r"(?<n>a)\k<n>", "regex uses a backreference ('\\\\k<'), which Macie does not support"),
        (r"x*+*", "invalid regex 'x*+*': multiple repeat at position 3"),
    ],
)
def test_macie_regex_dialect(regex, problem):
    with pytest.raises(ValueError) as raised:
        _build(custom_data_identifiers=[CustomDataIdentifier(name="Id", regex=regex)])
    assert str(raised.value) == f"Invalid SensitiveDataScanPipeline settings:\n- custom_data_identifiers[0] ('Id'): {problem}"


@pytest.mark.parametrize(
    "regex",
    [r"\p{L}+-[0-9]{4}", r"\h*EMP\h*[0-9]{6}", r"\Q(a.b)\E[0-9]", r"(?<id>EMP)-[0-9]+", r"(?|EMP|STF)-[0-9]+",
     r"(?i:emp)-[0-9]+", r"(?>EMP)-[0-9]++", r"[\1(?=]", r"(?#comment)EMP"],
)
def test_pcre_that_python_does_not_know_is_accepted(regex):
    """Only the poll interval is wrong here: the regex itself is not reported (nothing is built)."""
    with pytest.raises(ValueError) as raised:
        _build(custom_data_identifiers=[CustomDataIdentifier(name="Id", regex=regex)], poll_interval=Duration.seconds(5))
    assert str(raised.value) == "Invalid SensitiveDataScanPipeline settings:\n- poll_interval must be at least 10 seconds"


@pytest.mark.parametrize(
    "settings, problem",
    [
        ({"externally_managed": "ingress_bucket"}, "externally_managed must be a list of setting names, not a single string"),
        ({"externally_managed": ["topic"]}, "externally_managed lists 'topic', but no topic is given"),
        ({"finding_policy": ["HIGH"]}, "finding_policy must be a FindingPolicy or a mapping of severity to action"),
        ({"finding_policy": {"medium": "BLOCK"}}, "finding_policy.medium must be one of ALLOW, REVIEW, DENY, got 'BLOCK'"),
        ({"ingress_bucket": "my-bucket"}, "ingress_bucket must be an s3.IBucket"),
        ({"encryption_key": "alias/aws/s3"}, "encryption_key must be a kms.IKey"),
    ],
)
def test_bring_your_own_single_problems(settings, problem):
    with pytest.raises(ValueError) as raised:
        _build(**settings)
    assert str(raised.value) == f"Invalid SensitiveDataScanPipeline settings:\n- {problem}"


def test_topic_with_the_aws_managed_key_is_refused():
    stack = cdk.Stack(cdk.App(), "ByoProps", env=ENV)
    topic = sns.Topic.from_topic_attributes(
        stack, "Topic", topic_arn="arn:aws:sns:eu-west-1:111122223333:alerts", key_arn="arn:aws:kms:eu-west-1:111122223333:alias/aws/sns"
    )
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(stack, "Pipeline", topic=topic, externally_managed=["topic"])
    assert str(raised.value) == (
        "Invalid SensitiveDataScanPipeline settings:\n"
        "- topic is encrypted with the AWS managed key alias/aws/sns, which CloudWatch alarms cannot use"
    )


def test_kms_aliases_are_refused_wherever_a_key_is_expected():
    """IAM statements on an alias ARN name the alias, not its key: every one of these would fail at run time."""
    stack = cdk.Stack(cdk.App(), "ByoProps", env=ENV)
    key = kms.Key(stack, "Key")
    owned_alias = kms.Alias(stack, "Owned", alias_name="alias/pipeline-data", target_key=key)
    results_alias = kms.Alias.from_alias_name(stack, "Results", "alias/macie-results")
    ingress = s3.Bucket.from_bucket_attributes(
        stack, "Ingress", bucket_name="landing", encryption_key=kms.Key.from_key_arn(
            stack, "IngressKey", "arn:aws:kms:eu-west-1:111122223333:alias/landing"))
    topic = sns.Topic(stack, "Topic", master_key=kms.Alias.from_alias_name(stack, "TopicAlias", "alias/alerts"))
    with pytest.raises(ValueError) as raised:
        SensitiveDataScanPipeline(
            stack, "Pipeline", encryption_key=owned_alias, ingress_bucket=ingress, topic=topic,
            discovery_results_bucket=s3.Bucket.from_bucket_name(stack, "ResultsBucket", "macie-results"),
            discovery_results_key=results_alias, externally_managed=["encryption_key", "ingress_bucket", "topic"],
        )
    tail = ", not a key: IAM statements on an alias do not cover its key, so every use would be denied at run time; " \
        "pass the key itself (kms.Key.from_key_arn)"
    aliases = [line for line in str(raised.value).splitlines() if "KMS alias" in line]
    assert aliases == [
        f"- encryption_key is the KMS alias alias/pipeline-data{tail}",
        f"- discovery_results_key is the KMS alias alias/macie-results{tail}",
        f"- ingress_bucket's encryption_key is the KMS alias alias/landing{tail}",
        f"- topic's master_key is the KMS alias alias/alerts{tail}",
    ]
    # A key is accepted wherever an alias was refused.
    ok = cdk.Stack(cdk.App(), "ByoKeys", env=ENV)
    SensitiveDataScanPipeline(ok, "Pipeline", encryption_key=kms.Key(ok, "Key"),
                              topic=sns.Topic(ok, "Topic", master_key=kms.Key(ok, "TopicKey")))


def test_finding_policy_mapping_is_case_insensitive_and_defaults_to_review():
    assert FindingPolicy.from_mapping({"low": "ALLOW", "HIGH": FindingAction.DENY}) == FindingPolicy(
        low="ALLOW", medium=FindingAction.REVIEW, high=FindingAction.DENY
    )


# ---------------------------------------------------------------------- wrong types
_WRONG_TYPES = {
    "removal_policy": ("RETAIN", "removal_policy must be a RemovalPolicy, got str 'RETAIN'"),
    "trigger": ("schedule", "trigger must be Trigger.on_object_created(...) or Trigger.on_schedule(...)"),
    "custom_data_identifiers": ("EMP-[0-9]+", "custom_data_identifiers must be a list of CustomDataIdentifier objects, got str"),
    "allow_lists": ([{"name": "x", "regex": "y"}], "allow_lists[0] must be a AllowList"),
    "managed_data_identifier_selector": (5, "managed_data_identifier_selector must be a ManagedDataIdentifierSelector (or its value as a string), got int 5"),
    "managed_data_identifier_ids": ("CREDIT_CARD_NUMBER", "managed_data_identifier_ids must be a list of managed data identifier ids, got str"),
    "finding_policy": (["HIGH"], "finding_policy must be a FindingPolicy or a mapping of severity to action"),
    "unknown_format_policy": (1, "unknown_format_policy must be a UnknownFormatPolicy (or its value as a string), got int 1"),
    "deny_policy": (None, "deny_policy must be a DenyPolicy (or its value as a string), got NoneType None"),
    "poll_interval": (5, "poll_interval must be a Duration, got int 5"),
    "chunk_objects": ("200", "chunk_objects must be an int, got str '200'"),
    "map_concurrency": (True, "map_concurrency must be an int, got bool True"),
    "job_completion_events": ("yes", "job_completion_events must be a bool, got str 'yes'"),
    "max_scan_wait": ("6h", "max_scan_wait must be a Duration, got str '6h'"),
    "approval_timeout": (3.0, "approval_timeout must be a Duration, got float 3.0"),
    "approval_heartbeat": (60, "approval_heartbeat must be a Duration, got int 60"),
    "notification_emails": ("security@example.com", "notification_emails must be a list of email addresses, got str"),
    "vault_object_lock": (True, "vault_object_lock must be an ObjectLock"),
    "create_macie_session": ("yes", "create_macie_session must be a bool, got str 'yes'"),
    "configure_discovery_results": (1, "configure_discovery_results must be a bool, got int 1"),
    "discovery_results_bucket": ("macie-results", "discovery_results_bucket must be an s3.IBucket"),
    "discovery_results_key": ("arn:aws:kms:eu-west-1:111122223333:key/k", "discovery_results_key must be a kms.IKey"),
    "review_api_iam_auth": (True, "review_api_iam_auth was removed (0.x): a browser cannot sign IAM requests. Reviewers now "
                            "sign in through Amazon Cognito"),
    "reviewer_user_pool": ("eu-west-1_abc", "reviewer_user_pool must be a cognito.IUserPool"),
    "reviewer_user_pool_client": (7, "reviewer_user_pool_client must be a cognito.IUserPoolClient"),
    "reviewer_sign_in_url": (5, "reviewer_sign_in_url must be a str, got int 5"),
    "reviewers_group": (["reviewers"], "reviewers_group must be a str, got list ['reviewers']"),
    "review_approvals_required": ("2", "review_approvals_required must be an int, got str '2'"),
    "sign_in_layer": ("arn:aws:lambda:eu-west-1:111122223333:layer:jwt:1", "sign_in_layer must be a lambda.ILayerVersion"),
    "pandas_layer": ("arn:aws:lambda:eu-west-1:111122223333:layer:pandas:1", "pandas_layer must be a lambda.ILayerVersion"),
    "runtime_layer": (3, "runtime_layer must be a lambda.ILayerVersion"),
    "ingress_bucket": ("landing", "ingress_bucket must be an s3.IBucket"),
    "vault_bucket": (42, "vault_bucket must be an s3.IBucket"),
    "encryption_key": ("alias/aws/s3", "encryption_key must be a kms.IKey"),
    "topic": ("arn:aws:sns:eu-west-1:111122223333:alerts", "topic must be an sns.ITopic"),
    "event_bus": ("default", "event_bus must be an events.IEventBus"),
    "externally_managed": ("topic", "externally_managed must be a list of setting names, not a single string"),
}


@pytest.mark.parametrize("setting", sorted(_WRONG_TYPES))
def test_a_wrong_type_raises_type_error_naming_the_setting_and_the_type(setting):
    value, problem = _WRONG_TYPES[setting]
    stack = cdk.Stack(cdk.App(), "Types")
    with pytest.raises(TypeError) as raised:
        SensitiveDataScanPipeline(stack, "Pipeline", **{setting: value})
    assert f"- {problem}" in str(raised.value)
    assert isinstance(raised.value, ValueError), "still the one ValueError that lists every problem"
    assert [c.node.id for c in stack.node.find_child("Pipeline").node.children] == []


def test_every_setting_is_type_checked():
    """A new keyword argument needs its own wrong-type case above."""
    import inspect

    settings = [p.name for p in inspect.signature(SensitiveDataScanPipeline.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert sorted(settings) == sorted(_WRONG_TYPES)


def test_type_problems_and_value_problems_are_reported_together():
    with pytest.raises(TypeError) as raised:
        _build(poll_interval=5, approval_timeout=Duration.seconds(5), trigger=Trigger.on_schedule(max_batch_objects="10"))
    assert str(raised.value) == "\n- ".join([
        "Invalid SensitiveDataScanPipeline settings:",
        "trigger max_batch_objects must be an int, got str '10'",
        "poll_interval must be a Duration, got int 5",
        "approval_timeout must be at least 1 minute",
    ])
    with pytest.raises(ValueError) as raised:
        _build(approval_timeout=Duration.seconds(5))
    assert not isinstance(raised.value, TypeError), "only a wrong type makes the error a TypeError"


# ---------------------------------------------------------------------- Macie's own limits
def test_macie_limits_fail_at_synth_with_the_entry_named():
    """Values Macie would reject at deploy (the resource) or at run time (the job) fail at synth."""
    with pytest.raises(ValueError) as raised:
        _build(
            custom_data_identifiers=[
                CustomDataIdentifier(name="Emp", regex="EMP-[0-9]+", keywords=["emp"], ignore_words=["EMP", "EMP-0000"],
                                     description="d" * 513),
                *[CustomDataIdentifier(name=f"Id{i}", regex=f"ID{i}-[0-9]+") for i in range(30)],
            ],
            allow_lists=[AllowList(name=f"List{i}", regex=f"TEST{i}", description="" if i == 0 else None) for i in range(11)],
        )
    assert str(raised.value) == "\n- ".join([
        "Invalid SensitiveDataScanPipeline settings:",
        "custom_data_identifiers[0] ('Emp'): description must be 1-512 characters",
        # Ignore words are 4-90 characters (keywords 3-90): 'EMP' is a valid keyword, not an ignore word.
        "custom_data_identifiers[0] ('Emp').ignore_words: 'EMP' must be 4-90 characters",
        "custom_data_identifiers has 31 entries, a Macie job takes at most 30 custom data identifiers",
        "allow_lists[0] ('List0'): description must be 1-512 characters",
        "allow_lists has 11 entries, a Macie job takes at most 10 allow lists",
    ])


def test_macie_limits_at_their_edges_are_accepted():
    stack = cdk.Stack(cdk.App(), "Edges")
    SensitiveDataScanPipeline(
        stack, "Pipeline",
        custom_data_identifiers=[CustomDataIdentifier(name=f"Id{i}", regex=f"ID{i}-[0-9]+", keywords=["abc"], ignore_words=["ID0-0"],
                                                      description="d" * 512) for i in range(30)],
        allow_lists=[AllowList(name=f"List{i}", regex=f"TEST{i}", description="x") for i in range(10)],
    )
