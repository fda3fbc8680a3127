#!/usr/bin/env python3
"""In-memory S3 + DynamoDB for scripts/bench (Python stdlib only).

moto spends milliseconds of Python per request, which hides what a client costs once
tables hold tens of thousands of rows or a bucket thousands of lockfiles. This fake
serves the subset of the two APIs that Terraform's s3 backend, tflock, bench_seed and
the AWS CLI use, with the documented semantics those depend on:

DynamoDB (JSON 1.0 protocol: POST /, X-Amz-Target DynamoDB_20120810.<Op>)
  CreateTable, DescribeTable, DeleteTable, ListTables, PutItem, GetItem, DeleteItem,
  BatchGetItem, BatchWriteItem, Scan. Condition, filter and projection expressions with
  #name / :value placeholders: = <> < <= > >=, AND, OR, NOT, parentheses,
  attribute_exists, attribute_not_exists, begins_with, contains. A Scan page stops once
  the items READ (before the filter) reach 1 MB by DynamoDB's item-size rule (attribute
  names + values), or at Limit items; LastEvaluatedKey continues it. Segment /
  TotalSegments split the key space. A failed condition is ConditionalCheckFailedException.
S3 (path-style: /BUCKET and /BUCKET/KEY)
  CreateBucket, PutObject (If-None-Match: *, If-Match), GetObject, HeadObject,
  DeleteObject (If-Match: 412 on another ETag, 404 on a missing key), ListObjectsV2
  (prefix, start-after, continuation-token, max-keys up to 1000, encoding-type=url).

No authentication (signatures are not checked), no persistence. Not a general emulator:
an operation or expression outside that subset is answered with an error, never guessed.

  fake_aws.py PORT
"""

import asyncio
import base64
import bisect
import email.utils
import hashlib
import json
import re
import sys
import time
import urllib.parse
import uuid
import zlib
from http import HTTPStatus
from xml.sax.saxutils import escape

from http1 import Message, read_request, serve

# DynamoDB's "1 MB" Scan page, taken as 2^20 bytes (its 400 KB item limit is 409,600).
PAGE_BYTES = 1 << 20
LIST_MAX_KEYS = 1000

# One asyncio loop serves every connection, one request at a time: no locks needed.
TABLES = {}  # name -> Table
BUCKETS = {}  # name -> Bucket


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def validation(message):
    return ApiError(400, "com.amazon.coral.validate#ValidationException", message)


# ---------------------------------------------------------------- DynamoDB expressions

TOKEN = re.compile(r"\s*(?:(<>|<=|>=|[=<>(),])|([#:]?[A-Za-z_][A-Za-z0-9_]*))")
FUNCTIONS = {"attribute_exists", "attribute_not_exists", "begins_with", "contains"}


def tokenize(text):
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise validation(f"Invalid expression: unsupported syntax at {text[pos:pos + 20]!r}")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    return tokens


class Expr:
    """Parses one condition/filter expression into a predicate over an item (a dict of
    attribute name -> typed value). Unknown placeholders are a ValidationException, as in
    DynamoDB."""

    def __init__(self, text, names, values):
        self.tokens, self.i = tokenize(text), 0
        self.names, self.values = names or {}, values or {}
        self.pred = self.parse_or()
        if self.i != len(self.tokens):
            raise validation(f"Invalid expression: unexpected {self.tokens[self.i]!r}")

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None or (want is not None and tok.upper() != want.upper()):
            raise validation(f"Invalid expression: expected {want or 'more'}, got {tok!r}")
        self.i += 1
        return tok

    def parse_or(self):
        left = self.parse_and()
        while (self.peek() or "").upper() == "OR":
            self.take()
            a, b = left, self.parse_and()
            left = lambda item, a=a, b=b: a(item) or b(item)
        return left

    def parse_and(self):
        left = self.parse_not()
        while (self.peek() or "").upper() == "AND":
            self.take()
            a, b = left, self.parse_not()
            left = lambda item, a=a, b=b: a(item) and b(item)
        return left

    def parse_not(self):
        if (self.peek() or "").upper() == "NOT":
            self.take()
            inner = self.parse_not()
            return lambda item: not inner(item)
        return self.parse_primary()

    def parse_primary(self):
        tok = self.peek()
        if tok == "(":
            self.take()
            inner = self.parse_or()
            self.take(")")
            return inner
        if tok is not None and tok.lower() in FUNCTIONS and self.tokens[self.i + 1 : self.i + 2] == ["("]:
            fn = self.take().lower()
            self.take("(")
            path = self.path()
            arg = None
            if fn in ("begins_with", "contains"):
                self.take(",")
                arg = self.operand()
            self.take(")")
            if fn == "attribute_exists":
                return lambda item: path in item
            if fn == "attribute_not_exists":
                return lambda item: path not in item
            if fn == "begins_with":
                return lambda item: _begins_with(item.get(path), arg(item))
            return lambda item: _contains(item.get(path), arg(item))
        left = self.operand()
        op = self.take()
        if op not in ("=", "<>", "<", "<=", ">", ">="):
            raise validation(f"Invalid expression: unsupported operator {op!r}")
        right = self.operand()
        return lambda item: _compare(op, left(item), right(item))

    def path(self):
        tok = self.take()
        if tok.startswith(":") or tok in "(),=<>":
            raise validation(f"Invalid expression: expected an attribute, got {tok!r}")
        if tok.startswith("#"):
            if tok not in self.names:
                raise validation(f"An expression attribute name used in the document path is not defined; attribute name: {tok}")
            return self.names[tok]
        return tok

    def operand(self):
        tok = self.peek()
        if tok is not None and tok.startswith(":"):
            self.take()
            if tok not in self.values:
                raise validation(f"An expression attribute value used in expression is not defined; attribute value: {tok}")
            value = self.values[tok]
            return lambda item: value
        name = self.path()
        return lambda item: item.get(name)


def _scalar(v):
    if not isinstance(v, dict) or len(v) != 1:
        return None, None
    (t, x), = v.items()
    if t == "N":
        return t, float(x)
    return t, x


def _compare(op, a, b):
    if a is None or b is None:
        return op == "<>" and (a is None) != (b is None)
    if op in ("=", "<>"):
        same = _scalar(a) == _scalar(b) if "N" in a else a == b
        return same if op == "=" else not same
    (ta, xa), (tb, xb) = _scalar(a), _scalar(b)
    if ta != tb or ta not in ("S", "N", "B"):
        return False
    return {"<": xa < xb, "<=": xa <= xb, ">": xa > xb, ">=": xa >= xb}[op]


def _begins_with(v, prefix):
    (t, x), (tp, p) = _scalar(v), _scalar(prefix)
    return t is not None and t == tp and t in ("S", "B") and x.startswith(p)


def _contains(v, needle):
    if not isinstance(v, dict):
        return False
    (t, x), = v.items()
    if t == "S":
        return "S" in needle and needle["S"] in x
    if t in ("SS", "NS", "BS"):
        return any(needle == {t[0]: e} for e in x)
    if t == "L":
        return needle in x
    return False


def projection(text, names):
    """Top-level attribute names of a ProjectionExpression (nested paths unsupported)."""
    if not text:
        return None
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not re.fullmatch(r"#?[A-Za-z_][A-Za-z0-9_]*", part):
            raise validation(f"Invalid ProjectionExpression: unsupported path {part!r}")
        if part.startswith("#"):
            if part not in (names or {}):
                raise validation(f"An expression attribute name used in the document path is not defined; attribute name: {part}")
            part = names[part]
        out.add(part)
    return out


def project(item, attrs):
    return item if attrs is None else {k: v for k, v in item.items() if k in attrs}


def value_size(v):
    (t, x), = v.items()
    if t == "S":
        return len(x.encode())
    if t == "N":
        return len(x.lstrip("-").replace(".", "")) // 2 + 1
    if t == "B":
        return len(base64.b64decode(x))
    if t in ("BOOL", "NULL"):
        return 1
    if t in ("SS", "NS", "BS"):
        return sum(value_size({t[0]: e}) for e in x)
    if t == "L":
        return 3 + sum(value_size(e) + 1 for e in x)
    if t == "M":
        return 3 + sum(len(k.encode()) + value_size(e) + 1 for k, e in x.items())
    raise validation(f"Unsupported attribute type {t}")


def item_size(item):
    """DynamoDB's item size: the UTF-8 bytes of each attribute name plus its value."""
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


# ---------------------------------------------------------------- DynamoDB tables


class Table:
    def __init__(self, name, key_schema, attribute_definitions):
        self.name = name
        self.key_schema = key_schema
        self.attribute_definitions = attribute_definitions
        self.hash_key = next(k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH")
        if any(k["KeyType"] == "RANGE" for k in key_schema):
            raise validation("fake_aws: tables with a sort key are not supported")
        self.items = {}  # key string -> (item, size)
        self.order = []  # sorted key strings: Scan order, and where ExclusiveStartKey resumes
        self.created = time.time()

    def key_of(self, key):
        v = key.get(self.hash_key) if isinstance(key, dict) else None
        if not isinstance(v, dict) or len(v) != 1 or len(key) != 1:
            raise validation("The provided key element does not match the schema")
        (t, x), = v.items()
        if t not in ("S", "N", "B"):
            raise validation("The provided key element does not match the schema")
        return x

    def put(self, item):
        k = self.key_of({self.hash_key: item.get(self.hash_key)})
        if k not in self.items:
            bisect.insort(self.order, k)
        self.items[k] = (item, item_size(item))

    def delete(self, k):
        if k in self.items:
            del self.items[k]
            i = bisect.bisect_left(self.order, k)
            if i < len(self.order) and self.order[i] == k:
                self.order.pop(i)

    def describe(self):
        return {
            "TableName": self.name,
            "TableStatus": "ACTIVE",
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
            "ItemCount": len(self.items),
            "TableSizeBytes": sum(s for _, s in self.items.values()),
            "CreationDateTime": self.created,
            "TableArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/{self.name}",
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        }


def table(name):
    t = TABLES.get(name)
    if t is None:
        raise ApiError(400, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "Requested resource not found")
    return t


def check_condition(req, current):
    text = req.get("ConditionExpression")
    if text and not Expr(text, req.get("ExpressionAttributeNames"), req.get("ExpressionAttributeValues")).pred(current or {}):
        raise ApiError(400, "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "The conditional request failed")


def ddb_create_table(req):
    name = req["TableName"]
    if name in TABLES:
        raise ApiError(400, "com.amazonaws.dynamodb.v20120810#ResourceInUseException", f"Table already exists: {name}")
    TABLES[name] = Table(name, req["KeySchema"], req.get("AttributeDefinitions", []))
    return {"TableDescription": TABLES[name].describe()}


def ddb_describe_table(req):
    return {"Table": table(req["TableName"]).describe()}


def ddb_delete_table(req):
    t = table(req["TableName"])
    del TABLES[t.name]
    return {"TableDescription": t.describe()}


def ddb_list_tables(req):
    return {"TableNames": sorted(TABLES)}


def ddb_put_item(req):
    t = table(req["TableName"])
    item = req["Item"]
    k = t.key_of({t.hash_key: item.get(t.hash_key)})
    old = t.items.get(k, (None, 0))[0]
    check_condition(req, old)
    t.put(item)
    return {"Attributes": old} if req.get("ReturnValues") == "ALL_OLD" and old else {}


def ddb_get_item(req):
    t = table(req["TableName"])
    found = t.items.get(t.key_of(req["Key"]))
    if found is None:
        return {}
    attrs = projection(req.get("ProjectionExpression"), req.get("ExpressionAttributeNames"))
    return {"Item": project(found[0], attrs)}


def ddb_delete_item(req):
    t = table(req["TableName"])
    k = t.key_of(req["Key"])
    old = t.items.get(k, (None, 0))[0]
    check_condition(req, old)
    t.delete(k)
    return {"Attributes": old} if req.get("ReturnValues") == "ALL_OLD" and old else {}


def ddb_batch_get_item(req):
    requests = req.get("RequestItems") or {}
    if sum(len(r.get("Keys", [])) for r in requests.values()) > 100:
        raise validation("Too many items requested for the BatchGetItem call")
    out = {}
    for name, r in requests.items():
        t = table(name)
        attrs = projection(r.get("ProjectionExpression"), r.get("ExpressionAttributeNames"))
        out[name] = [project(t.items[k][0], attrs) for k in map(t.key_of, r.get("Keys", [])) if k in t.items]
    return {"Responses": out, "UnprocessedKeys": {}}


def ddb_batch_write_item(req):
    requests = req.get("RequestItems") or {}
    if sum(len(r) for r in requests.values()) > 25:
        raise validation("Too many items requested for the BatchWriteItem call")
    for name, writes in requests.items():
        t = table(name)
        for w in writes:
            if "PutRequest" in w:
                t.put(w["PutRequest"]["Item"])
            elif "DeleteRequest" in w:
                t.delete(t.key_of(w["DeleteRequest"]["Key"]))
            else:
                raise validation("BatchWriteItem: a request is neither PutRequest nor DeleteRequest")
    return {"UnprocessedItems": {}}


def ddb_scan(req):
    t = table(req["TableName"])
    names, values = req.get("ExpressionAttributeNames"), req.get("ExpressionAttributeValues")
    keep = Expr(req["FilterExpression"], names, values).pred if req.get("FilterExpression") else None
    attrs = projection(req.get("ProjectionExpression"), names)
    limit = req.get("Limit")
    segment, total = req.get("Segment"), req.get("TotalSegments")
    if (segment is None) != (total is None) or (total is not None and not 0 <= segment < total):
        raise validation("Segment and TotalSegments go together, with 0 <= Segment < TotalSegments")
    start = 0
    if req.get("ExclusiveStartKey"):
        start = bisect.bisect_right(t.order, t.key_of(req["ExclusiveStartKey"]))
    items, scanned, size, last = [], 0, 0, None
    for i in range(start, len(t.order)):
        k = t.order[i]
        if total is not None and zlib.crc32(k.encode()) % total != segment:
            continue
        item, item_bytes = t.items[k]
        scanned += 1
        size += item_bytes
        last = i
        if keep is None or keep(item):
            items.append(project(item, attrs))
        # The page ends once 1 MB has been READ (the filter does not shrink it) or Limit
        # items were evaluated; the last item read is where the next page resumes.
        if size >= PAGE_BYTES or (limit is not None and scanned >= limit):
            break
    out = {"Count": len(items), "ScannedCount": scanned}
    if req.get("Select") != "COUNT":
        out["Items"] = items
    rest = t.order[last + 1 :] if last is not None else []
    if last is not None and any(total is None or zlib.crc32(k.encode()) % total == segment for k in rest):
        out["LastEvaluatedKey"] = {t.hash_key: t.items[t.order[last]][0][t.hash_key]}
    return out


DYNAMODB = {
    "CreateTable": ddb_create_table,
    "DescribeTable": ddb_describe_table,
    "DeleteTable": ddb_delete_table,
    "ListTables": ddb_list_tables,
    "PutItem": ddb_put_item,
    "GetItem": ddb_get_item,
    "DeleteItem": ddb_delete_item,
    "BatchGetItem": ddb_batch_get_item,
    "BatchWriteItem": ddb_batch_write_item,
    "Scan": ddb_scan,
}


# ---------------------------------------------------------------- S3


class Bucket:
    def __init__(self):
        self.objects = {}  # key -> (body, etag, last_modified, content_type)
        self.keys = []  # sorted by UTF-8 bytes, as S3 lists them


def sort_key(key):
    return key.encode()


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def iso_date(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def etag_matches(header, etag):
    return any(e.strip() in ("*", etag) for e in header.split(","))


def precondition_failed():
    return ApiError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


def no_such_key(key):
    return ApiError(404, "NoSuchKey", f"The specified key does not exist. ({key})")


XML = [("Content-Type", "application/xml")]


def s3(req, method, path, body):
    url = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    parts = url.path.lstrip("/").split("/", 1)
    name = urllib.parse.unquote(parts[0])
    key = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    if not name:
        raise ApiError(400, "NotImplemented", "fake_aws serves path-style bucket requests only")
    if key is None:
        return s3_bucket(method, name, query)
    bucket = BUCKETS.get(name)
    if bucket is None:
        raise ApiError(404, "NoSuchBucket", f"The specified bucket does not exist ({name})")
    return s3_object(req, method, bucket, key, body)


def s3_bucket(method, name, query):
    if method == "PUT":
        BUCKETS.setdefault(name, Bucket())
        return 200, [("Location", f"/{name}")], b""
    bucket = BUCKETS.get(name)
    if bucket is None:
        raise ApiError(404, "NoSuchBucket", f"The specified bucket does not exist ({name})")
    if method == "HEAD":
        return 200, [], b""
    if method != "GET" or query.get("list-type") != "2":
        raise ApiError(400, "NotImplemented", "fake_aws serves ListObjectsV2 (list-type=2) on buckets")
    if query.get("delimiter"):
        raise ApiError(400, "NotImplemented", "fake_aws does not serve delimiter listings")
    prefix = query.get("prefix", "")
    max_keys = min(int(query.get("max-keys", LIST_MAX_KEYS)), LIST_MAX_KEYS)
    after = query.get("start-after", "")
    if query.get("continuation-token"):
        after = base64.urlsafe_b64decode(query["continuation-token"]).decode()
    i = bisect.bisect_right(bucket.keys, sort_key(after)) if after else bisect.bisect_left(bucket.keys, sort_key(prefix))
    found = []
    while i < len(bucket.keys) and len(found) < max_keys:
        k = bucket.keys[i].decode()
        if not k.startswith(prefix):
            break
        found.append(k)
        i += 1
    truncated = i < len(bucket.keys) and bucket.keys[i].decode().startswith(prefix)
    url_encoded = query.get("encoding-type") == "url"
    enc = (lambda s: urllib.parse.quote(s, safe="/")) if url_encoded else (lambda s: s)
    xml = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        f"<Name>{escape(name)}</Name><Prefix>{escape(enc(prefix))}</Prefix><KeyCount>{len(found)}</KeyCount>",
        f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
    ]
    if url_encoded:
        xml.append("<EncodingType>url</EncodingType>")
    if query.get("continuation-token"):
        xml.append(f"<ContinuationToken>{escape(query['continuation-token'])}</ContinuationToken>")
    if truncated:
        token = base64.urlsafe_b64encode(found[-1].encode()).decode()
        xml.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
    for k in found:
        data, etag, modified, _ = bucket.objects[k]
        xml.append(
            f"<Contents><Key>{escape(enc(k))}</Key><LastModified>{iso_date(modified)}</LastModified>"
            f"<ETag>{escape(etag)}</ETag><Size>{len(data)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        )
    xml.append("</ListBucketResult>")
    return 200, XML, "".join(xml).encode()


def s3_object(req, method, bucket, key, body):
    current = bucket.objects.get(key)
    if method == "PUT":
        if req.header("x-amz-copy-source"):
            raise ApiError(400, "NotImplemented", "fake_aws does not serve CopyObject")
        none_match, match = req.header("If-None-Match"), req.header("If-Match")
        if none_match is not None and current is not None and etag_matches(none_match, current[1]):
            raise precondition_failed()
        if match is not None:
            if current is None:
                raise no_such_key(key)
            if not etag_matches(match, current[1]):
                raise precondition_failed()
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        if current is None:
            bisect.insort(bucket.keys, sort_key(key))
        bucket.objects[key] = (body, etag, time.time(), req.header("Content-Type", "binary/octet-stream"))
        return 200, [("ETag", etag)], b""
    if method in ("GET", "HEAD"):
        if current is None:
            raise no_such_key(key)
        data, etag, modified, ctype = current
        return 200, [("ETag", etag), ("Last-Modified", http_date(modified)), ("Content-Type", ctype)], data
    if method == "DELETE":
        match = req.header("If-Match")
        if match is not None:
            if current is None:
                raise no_such_key(key)
            if not etag_matches(match, current[1]):
                raise precondition_failed()
        if current is not None:
            del bucket.objects[key]
            bucket.keys.pop(bisect.bisect_left(bucket.keys, sort_key(key)))
        return 204, [], b""
    raise ApiError(405, "MethodNotAllowed", f"fake_aws does not serve {method} on objects")


# ---------------------------------------------------------------- HTTP

JSON = "application/x-amz-json-1.0"


def dynamodb(op, body):
    fn = DYNAMODB.get(op)
    if fn is None:
        raise ApiError(400, "com.amazonaws.dynamodb.v20120810#UnknownOperationException", f"fake_aws does not serve {op}")
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "com.amazon.coral.service#SerializationException", "request body is not JSON")
    try:
        out = fn(req)
    except (KeyError, TypeError, AttributeError) as e:
        raise validation(f"malformed request: {e!r}")
    payload = json.dumps(out, separators=(",", ":")).encode()
    # The AWS CLI (botocore) checks this CRC32 of the body when it is present, as
    # DynamoDB always sends it.
    return 200, [("Content-Type", JSON), ("x-amz-crc32", str(zlib.crc32(payload)))], payload


def handle(req):
    """(status, headers, body) for one request."""
    method, path = req.start.split(" ", 2)[:2]
    target = req.header("X-Amz-Target", "")
    try:
        if method == "POST" and path == "/" and target.startswith("DynamoDB_20120810."):
            return dynamodb(target.split(".", 1)[1], req.body)
        return s3(req, method, path, req.body)
    except ApiError as e:
        if target:
            payload = json.dumps({"__type": e.code, "message": e.message}).encode()
            return e.status, [("Content-Type", JSON)], payload
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{e.code}</Code>'
            f"<Message>{escape(e.message)}</Message></Error>"
        ).encode()
        return e.status, XML, payload


async def connection(reader, writer):
    try:
        while True:
            req = await read_request(reader, writer)
            if req is None:
                return
            status, headers, body = handle(req)
            headers = headers + [("x-amzn-RequestId", uuid.uuid4().hex), ("Date", http_date(time.time()))]
            head_request = req.start.startswith("HEAD ")
            if status not in (204, 304):
                headers.append(("Content-Length", str(len(body))))
            rsp = Message(f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", headers, b"" if head_request else body)
            writer.write(rsp.encode())
            await writer.drain()
            if not req.keep_alive():
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fake_aws.py PORT")
    serve(int(sys.argv[1]), connection)
