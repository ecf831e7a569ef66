"""The synthesized stack, created in moto: what ``cdk deploy`` would have created, offline.

:class:`Deployment` turns the template into local resources, in dependency order: physical names
and KMS keys, the review API (its URL goes into the functions' environment), buckets, the state
table, the topic (delivered to an SQS queue the engine reads), event buses, the state machine
definition with its intrinsics resolved, the Python functions with their assets, the local Macie,
a capture rule for the result events, the state machine itself, the four zones and the trigger rules.
Nothing here runs an execution.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import boto3
from botocore.exceptions import ClientError

from ..asl import walk_states
from ..contract import (
    EVENT_SOURCE,
    RequestReviewEnvironment,
    ReviewApiEnvironment,
    TransferEnvironment,
)
from . import awsmodel
from .detection import (
    DEFAULT_MAXIMUM_MATCH_DISTANCE,
    AllowListSpec,
    CustomIdentifierSpec,
)
from .functions import LOG_SINK, LocalFunction, layer_is_pure_python
from .intake import IntakeResources
from .macie import LocalMacie, MacieBehavior
from .review_server import ReviewServer
from .sign_in import LocalReviewers
from .template import (
    ACCOUNT,
    ALLOW_LIST,
    BUCKET,
    CUSTOM_IDENTIFIER,
    EVENT_BUS,
    FUNCTION,
    KEY,
    LAYER,
    REGION,
    RULE,
    TABLE,
    TOPIC,
    USER_POOL,
    USER_POOL_CLIENT,
    USER_POOL_GROUP,
    Physical,
    Resolver,
    StackTemplate,
    TemplateError,
    physical_names,
)

ZONES = ("ingress", "quarantine", "review", "vault")
ENGINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/local-engine"
# Where each zone's bucket is named: a variable of the transfer function's environment (the one
# role that writes to every zone), and the batch bucket as well.
_ZONE_VARIABLES = {zone: TransferEnvironment.variable_name(f"{zone}_bucket") for zone in (*ZONES, "batch")}
_PLACEHOLDER_CODE = "# runs in process: see macie_pipeline.local.functions\n"


_REVIEW_API_URL = RequestReviewEnvironment.variable_name("review_api_url")
_SIGN_IN = {name: ReviewApiEnvironment.variable_name(name)
            for name in ("user_pool_id", "user_pool_client_id", "sign_in_url", "signed_in_url", "reviewers_group")}


class Deployment:
    """One pipeline's resources in moto, and the clients the other parts use to reach them.

    Built empty; :meth:`deploy` creates everything (inside an active moto mock).
    """

    def __init__(
        self,
        stack: StackTemplate,
        state_machine_id: str,
        *,
        macie_behavior: MacieBehavior,
        echo_logs: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.stack = stack
        self.state_machine_id = state_machine_id
        self.macie_behavior = macie_behavior
        self._echo_logs = echo_logs
        self.functions: dict[str, LocalFunction] = {}
        self.server: Optional[ReviewServer] = None
        self.reviewers: Optional[LocalReviewers] = None

    # ------------------------------------------------------------------ the steps, in order
    def deploy(self) -> None:
        self._open_clients()
        self._create_keys()
        self.server = ReviewServer(self.stack, self._invoke_by_logical_id)
        self.server.start()
        self._create_storage()
        self._create_messaging()
        self._create_reviewers()
        self.definition = self._definition()
        self._create_functions()
        self.intake = IntakeResources.create(self)
        self.macie = self._create_macie()
        self.event_queue = self._capture_result_events()
        self.state_machine_arn = self._create_state_machine()
        self.zones = self._zones()
        self.batch_bucket = self.zones.pop("batch")
        for bucket in (*self.zones.values(), self.batch_bucket):
            self._ensure_bucket(bucket)  # an imported (bring-your-own) bucket is not in the template
        self.trigger_rules = self._trigger_rules()

    def review_base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def _open_clients(self) -> None:
        self.physical: dict[str, Physical] = physical_names(self.stack)
        self.session = session = boto3.session.Session(region_name=REGION)
        self.s3 = session.client("s3")
        self.sfn = session.client("stepfunctions")
        self.sqs = session.client("sqs")
        self.sns = session.client("sns")
        self.events = session.client("events")
        self.logs = session.client("logs")
        iam = session.client("iam")
        iam.create_role(RoleName="local-engine", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))

    def _create_keys(self) -> None:
        """KMS keys first: their ids are only known once created, and everything else may refer to them."""
        kms = self.session.client("kms")
        for logical in self.stack.of_type(KEY):
            key = kms.create_key(Description=f"local {logical}")["KeyMetadata"]
            self.physical[logical] = Physical(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})
        self.resolver = Resolver(self.stack, self.physical)

    def _properties(self, resource: Mapping[str, Any]) -> Any:
        return self.resolver.resolve(resource.get("Properties") or {})

    def _create_storage(self) -> None:
        for logical, resource in self.stack.of_type(BUCKET).items():
            self._create_bucket(self.physical[logical].ref, self._properties(resource))
        for logical, resource in self.stack.of_type(TABLE).items():
            self._create_table(self.physical[logical].ref, self._properties(resource))

    def _create_messaging(self) -> None:
        """The topic delivers to a queue the engine drains; event buses as the template declares them."""
        self.notification_queue = self._queue("local-engine-notifications")
        for logical in self.stack.of_type(TOPIC):
            topic_arn = self.sns.create_topic(Name=self.physical[logical].attributes["TopicName"])["TopicArn"]
            self.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=self.queue_arn(self.notification_queue))
        for logical in self.stack.of_type(EVENT_BUS):
            self.events.create_event_bus(Name=self.physical[logical].ref)

    def _create_reviewers(self) -> None:
        """The reviewers' user pool, app client and group in moto's Cognito, as the template declares them
        (callback: the local review server's signed-in URL), and the local stand-in for their managed login."""
        assert self.server is not None
        idp = self.session.client("cognito-idp")
        callback = self.server.base_url + "signed-in"
        pools = self.stack.of_type(USER_POOL)
        if len(pools) > 1:
            raise TemplateError("The local engine runs one pipeline's reviewers' user pool, the template has several")
        for logical, resource in pools.items():
            props = self._properties(resource)
            pool = idp.create_user_pool(
                PoolName=f"local-{logical}"[:128],
                Policies=props.get("Policies") or {},
                AdminCreateUserConfig=props.get("AdminCreateUserConfig") or {},
                UsernameAttributes=props.get("UsernameAttributes") or [],
                MfaConfiguration=props.get("MfaConfiguration", "OFF"),
            )["UserPool"]
            provider = f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
            self.physical[logical] = Physical(pool["Id"], {"Arn": pool["Arn"], "ProviderName": provider, "UserPoolId": pool["Id"]})
        for logical, resource in self.stack.of_type(USER_POOL_CLIENT).items():
            props = self._properties(resource)
            client = idp.create_user_pool_client(
                UserPoolId=props["UserPoolId"], ClientName=f"local-{logical}"[:128], GenerateSecret=bool(props.get("GenerateSecret")),
                AllowedOAuthFlows=props.get("AllowedOAuthFlows") or [], AllowedOAuthScopes=props.get("AllowedOAuthScopes") or [],
                AllowedOAuthFlowsUserPoolClient=bool(props.get("AllowedOAuthFlowsUserPoolClient")), CallbackURLs=[callback],
                ReadAttributes=props.get("ReadAttributes") or [], SupportedIdentityProviders=props.get("SupportedIdentityProviders") or [],
            )["UserPoolClient"]
            self.physical[logical] = Physical(client["ClientId"], {"ClientId": client["ClientId"]})
        for logical, resource in self.stack.of_type(USER_POOL_GROUP).items():
            props = self._properties(resource)
            idp.create_group(UserPoolId=props["UserPoolId"], GroupName=props["GroupName"])
            self.physical[logical] = Physical(props["GroupName"], {})

    def _sign_in_environment(self, environment: dict[str, str]) -> dict:
        """The review function's sign-in variables pointed at moto's pool and the local sign-in; the module
        attributes the engine replaces (the key-set fetch). A pool the template does not create (your own)
        gets a stand-in in moto with the same group."""
        assert self.server is not None
        idp = self.session.client("cognito-idp")
        pool_id, group = environment[_SIGN_IN["user_pool_id"]], environment.get(_SIGN_IN["reviewers_group"], "reviewers")
        client_id = environment[_SIGN_IN["user_pool_client_id"]]
        callback = self.server.base_url + "signed-in"
        known = {p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}
        if pool_id not in known:  # bring-your-own pool: not in the template
            pool_id = idp.create_user_pool(PoolName="local-reviewers", AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
                                           UsernameAttributes=["email"])["UserPool"]["Id"]
            client_id = idp.create_user_pool_client(
                UserPoolId=pool_id, ClientName="local-reviewers", GenerateSecret=False, AllowedOAuthFlows=["code"],
                AllowedOAuthScopes=["openid", "email"], AllowedOAuthFlowsUserPoolClient=True, CallbackURLs=[callback],
                ReadAttributes=["email", "email_verified"], SupportedIdentityProviders=["COGNITO"],
            )["UserPoolClient"]["ClientId"]
            idp.create_group(UserPoolId=pool_id, GroupName=group)
        environment.update({
            _SIGN_IN["user_pool_id"]: pool_id, _SIGN_IN["user_pool_client_id"]: client_id,
            _SIGN_IN["sign_in_url"]: self.server.origin, _SIGN_IN["signed_in_url"]: callback,
        })
        self.reviewers = LocalReviewers(idp, pool_id=pool_id, client_id=client_id, group=group, callback_url=callback)
        self.reviewers.jwks_url = f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}/.well-known/jwks.json"
        self.server.sign_in = self.reviewers.serve
        return {"FETCH_JWKS": self.reviewers.fetch_jwks}

    def _definition(self) -> dict:
        props = self.stack.resources[self.state_machine_id].get("Properties") or {}
        text = self.resolver.resolve(props.get("DefinitionString"))
        if not isinstance(text, str):
            raise TemplateError("The state machine has no DefinitionString")
        substitutions = self.resolver.resolve(props.get("DefinitionSubstitutions") or {})
        for name, value in substitutions.items():
            text = text.replace("${" + name + "}", str(value))
        return json.loads(text)

    def _create_state_machine(self) -> str:
        sm = self.stack.resources[self.state_machine_id]
        return self.sfn.create_state_machine(
            name=self.physical[self.state_machine_id].attributes["Name"],
            definition=json.dumps(self.definition),
            roleArn=ENGINE_ROLE,
            type=(sm.get("Properties") or {}).get("StateMachineType", "STANDARD"),
        )["stateMachineArn"]

    # ------------------------------------------------------------------ queues
    def _queue(self, name: str) -> str:
        return self.sqs.create_queue(QueueName=name)["QueueUrl"]

    def queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # ------------------------------------------------------------------ buckets and table
    def _create_bucket(self, name: str, props: Mapping[str, Any]) -> None:
        kwargs: dict[str, Any] = {"Bucket": name}
        if props.get("ObjectLockEnabled"):
            kwargs["ObjectLockEnabledForBucket"] = True
        self.s3.create_bucket(**kwargs)
        if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled" or props.get("ObjectLockEnabled"):
            self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
        if rules:  # CloudFormation's rules, in the API's names
            api_rules = [
                {k: v for k, v in {"ApplyServerSideEncryptionByDefault": r.get("ServerSideEncryptionByDefault"),
                                   "BucketKeyEnabled": r.get("BucketKeyEnabled")}.items() if v is not None}
                for r in rules
            ]
            self.s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": api_rules})
        lock = props.get("ObjectLockConfiguration")
        if lock and lock.get("Rule"):
            self.s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)

    def _ensure_bucket(self, name: str) -> None:
        try:
            self.s3.head_bucket(Bucket=name)
        except ClientError:
            # An imported bucket, not created by the template: created empty, versioned.
            self._create_bucket(name, {"VersioningConfiguration": {"Status": "Enabled"}})

    def _create_table(self, name: str, props: Mapping[str, Any]) -> None:
        self.session.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )

    # ------------------------------------------------------------------ functions
    def _create_functions(self) -> None:
        """Each Python function with a local asset: a :class:`LocalFunction` the engine runs in
        process, and a placeholder in moto's Lambda so the workflow's invocations reach the engine."""
        lam = self.session.client("lambda")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.py", _PLACEHOLDER_CODE)
        layer_dirs = self._layer_dirs()
        for logical, props, code_dir in self._python_functions():
            function = self._local_function(logical, props, code_dir, layer_dirs)
            self.functions[function.name] = function
            lam.create_function(
                FunctionName=function.name,
                Runtime="python3.12",
                Role=ENGINE_ROLE,
                Handler=props["Handler"],
                Code={"ZipFile": buffer.getvalue()},
                Timeout=int(props.get("Timeout", 3)),
                MemorySize=int(props.get("MemorySize", 128)),
            )
        if not self.functions:
            raise TemplateError("The template has no Python Lambda functions with local assets")
        LOG_SINK.echo = self._echo_logs

    def _layer_dirs(self) -> dict[str, Path]:
        """Layer ARN -> the folder its Python packages are in."""
        layer_dirs: dict[str, Path] = {}
        for logical in self.stack.of_type(LAYER):
            folder = self.stack.asset_dir(logical)
            if folder is not None:
                layer_dirs[self.physical[logical].ref] = folder / "python" if (folder / "python").is_dir() else folder
        return layer_dirs

    def _python_functions(self) -> Iterator[tuple[str, dict, Path]]:
        """(logical id, properties, asset folder) of each Python function whose code is in the assembly."""
        for logical, resource in self.stack.of_type(FUNCTION).items():
            props = resource.get("Properties") or {}
            code_dir = self.stack.asset_dir(logical)
            if str(props.get("Runtime", "")).startswith("python") and code_dir is not None:
                yield logical, props, code_dir
            # else e.g. CDK's Node.js custom-resource provider: deployment plumbing, not the pipeline

    def _local_function(self, logical: str, props: dict, code_dir: Path, layer_dirs: Mapping[str, Path]) -> LocalFunction:
        environment = {k: str(v) for k, v in self.resolver.resolve((props.get("Environment") or {}).get("Variables") or {}).items()}
        if _REVIEW_API_URL in environment:
            environment[_REVIEW_API_URL] = self.review_base_url()
        overrides = self._sign_in_environment(environment) if _SIGN_IN["user_pool_id"] in environment else {}
        pure, substituted = [], []
        for layer_arn in self.resolver.resolve(props.get("Layers") or []):
            folder = layer_dirs.get(layer_arn)
            if folder is None:
                substituted.append(f"{layer_arn} (not in the assembly)")
            elif layer_is_pure_python(folder):
                pure.append(folder)
            else:
                substituted.append(f"{folder.parent.name} (compiled for Lambda; local packages used)")
        return LocalFunction(
            logical_id=logical,
            name=self.physical[logical].ref,
            handler=props["Handler"],
            environment=environment,
            code_dir=code_dir,
            layer_dirs=pure,
            substituted_layers=substituted,
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_seconds=int(props.get("Timeout", 3)),
            module_overrides=overrides,
        )

    def _invoke_by_logical_id(self, logical: str, event: dict) -> tuple[Any, Optional[dict], str]:
        """How the review API runs its function (no injected faults: API Gateway calls it directly)."""
        function = next(f for f in self.functions.values() if f.logical_id == logical)
        return function.invoke(event)

    # ------------------------------------------------------------------ Macie
    def _create_macie(self) -> LocalMacie:
        macie = LocalMacie(
            account_id=ACCOUNT,
            region=REGION,
            s3_client=self.s3,
            custom_identifiers=self._custom_identifiers(),
            allow_lists=self._allow_lists(),
            behavior=self.macie_behavior,
            logs_client=self.logs,
        )
        if not self._apply_export_configuration(macie):
            # The account's classification export configuration is outside the stack: simulate one.
            bucket = "local-macie-discovery-results"
            self._create_bucket(bucket, {"VersioningConfiguration": {"Status": "Enabled"}})
            key_arn = self.session.client("kms").create_key(Description="local Macie discovery results")["KeyMetadata"]["Arn"]
            destination = {"bucketName": bucket, "keyPrefix": "macie", "kmsKeyArn": key_arn}
            macie.call("PutClassificationExportConfiguration", {"configuration": {"s3Destination": destination}})
        return macie

    def _macie_resources(self, type_: str) -> Iterator[tuple[dict, dict]]:
        """(resolved properties, local attributes: Id and Arn) of each Macie resource of ``type_``."""
        for logical, resource in self.stack.of_type(type_).items():
            yield self._properties(resource), self.physical[logical].attributes

    def _custom_identifiers(self) -> list[CustomIdentifierSpec]:
        identifiers = []
        for props, attrs in self._macie_resources(CUSTOM_IDENTIFIER):
            identifiers.append(CustomIdentifierSpec(
                id=attrs["Id"], arn=attrs["Arn"], name=props["Name"], regex=props["Regex"],
                keywords=tuple(props.get("Keywords") or ()), ignore_words=tuple(props.get("IgnoreWords") or ()),
                maximum_match_distance=int(props.get("MaximumMatchDistance", DEFAULT_MAXIMUM_MATCH_DISTANCE)),
            ))
        return identifiers

    def _allow_lists(self) -> list[AllowListSpec]:
        allow_lists = []
        for props, attrs in self._macie_resources(ALLOW_LIST):
            criteria = props.get("Criteria") or {}
            words: Optional[tuple[str, ...]] = None
            source: Optional[tuple[str, str]] = None
            if criteria.get("S3WordsList"):
                location = criteria["S3WordsList"]
                source = (location["BucketName"], location["ObjectKey"])
                body = self.s3.get_object(Bucket=source[0], Key=source[1])["Body"].read()
                words = tuple(line.strip() for line in body.decode("utf-8").splitlines() if line.strip())
            allow_lists.append(AllowListSpec(
                id=attrs["Id"], arn=attrs["Arn"], name=props["Name"], regex=criteria.get("Regex"), words=words, s3_words_list=source,
            ))
        return allow_lists

    def _apply_export_configuration(self, macie: LocalMacie) -> bool:
        """Make the stack's own ``putClassificationExportConfiguration`` call, if it has one."""
        configured = False
        for resource in self.stack.of_type("Custom::AWS").values():
            create = (resource.get("Properties") or {}).get("Create")
            if create is None:
                continue
            call = json.loads(self.resolver.resolve(create))
            if str(call.get("service", "")).lower() == "macie2" and call.get("action") == "putClassificationExportConfiguration":
                params = awsmodel.sfn_params_to_api("macie2", "PutClassificationExportConfiguration", call.get("parameters") or {})
                macie.call("PutClassificationExportConfiguration", params)
                configured = True
        return configured

    # ------------------------------------------------------------------ what the engine reads back
    def _capture_result_events(self) -> str:
        """A rule on every bus the workflow puts events on, sending the pipeline's events to a queue."""
        queue = self._queue("local-engine-result-events")
        buses = {"default"}
        for _, _, state in walk_states(self.definition.get("States") or {}):
            for entry in ((state.get("Parameters") or {}).get("Entries") or []):
                bus = entry.get("EventBusName")
                if isinstance(bus, str):
                    buses.add(bus.rsplit("/", 1)[-1])
        for index, bus in enumerate(sorted(buses)):
            if bus != "default":
                try:
                    self.events.create_event_bus(Name=bus)
                except ClientError:
                    pass  # created from the template already
            rule = f"local-engine-capture-{index}"
            self.events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
            self.events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": self.queue_arn(queue)}])
        return queue

    def _zones(self) -> dict[str, str]:
        """Zone (and ``batch``) -> bucket name, read from the transfer function's environment (not guessed)."""
        zones: dict[str, str] = {}
        for function in self.functions.values():
            if function.role == TransferEnvironment.FUNCTION:
                zones.update({zone: function.environment[v] for zone, v in _ZONE_VARIABLES.items() if function.environment.get(v)})
        missing = [z for z in (*ZONES, "batch") if z not in zones]
        if missing:
            raise TemplateError(f"Cannot find the {', '.join(missing)} bucket(s) of the pipeline in the transfer function's environment")
        return zones

    def function_named(self, reference: Any) -> Optional[LocalFunction]:
        """The local function a template reference (name or ARN, resolved) designates, or None."""
        name = str(reference).rsplit(":function:", 1)[-1].split(":", 1)[0]
        return self.functions.get(name)

    def _trigger_rules(self) -> list[dict]:
        """The properties of the rules that start this state machine."""
        targets = (self.state_machine_arn, self.physical[self.state_machine_id].ref)
        rules = []
        for resource in self.stack.of_type(RULE).values():
            props = self._properties(resource)
            if any(t.get("Arn") == target for t in props.get("Targets") or [] for target in targets):
                rules.append(props)
        return rules
