#include "http/errors.h"

#include "util/error.h"

http_error_map http_error_lookup(int code, int anonymous) {
  switch (code) {
  case HUB_EREPO:
    return (http_error_map){404, "RepoNotFound", "Repository not found"};
  case HUB_EREVISION:
    return (http_error_map){404, "RevisionNotFound", "Revision not found"};
  case HUB_EENTRY:
    return (http_error_map){404, "EntryNotFound", "Entry not found"};
  case HUB_EGATED:
    return (http_error_map){anonymous ? 401 : 403, "GatedRepo",
                            "Access to this repository is restricted; ask for access first"};
  case HUB_ENOTFOUND:
    return (http_error_map){404, "NotFound", "Not found"};
  case HUB_EEXISTS:
    return (http_error_map){409, "Conflict", "Already exists"};
  case HUB_EINVALID:
    return (http_error_map){400, "BadRequest", "Bad request"};
  case HUB_EAUTH:
    return (http_error_map){401, "Unauthorized", "Invalid credentials in Authorization header"};
  case HUB_EFORBIDDEN:
    return (http_error_map){403, "Forbidden", "Forbidden"};
  case HUB_ECONFLICT:
    return (http_error_map){412, "PreconditionFailed", "Precondition failed"};
  case HUB_ETOOBIG:
    return (http_error_map){413, "PayloadTooLarge", "Request body too large"};
  case HUB_ERANGE:
    return (http_error_map){416, "RangeNotSatisfiable", "Range not satisfiable"};
  case HUB_EUNSUPPORTED:
    return (http_error_map){501, "NotImplemented", "Not implemented"};
  case HUB_ERETRY:
    return (http_error_map){409, "Conflict", "Conflicting operation, retry"};
  case HUB_EMETHOD:
    return (http_error_map){405, "MethodNotAllowed", "Method not allowed"};
  case HUB_EUNPROCESSABLE:
    return (http_error_map){422, "UnprocessableEntity", "Unprocessable entity"};
  case HUB_ENOSPC:
    return (http_error_map){507, "InsufficientStorage",
                            "The hub is out of disk space: nothing was stored. Try again later "
                            "or ask the administrator to free space."};
  case HUB_EUNAVAILABLE:
    return (http_error_map){503, "ServiceUnavailable",
                            "The hub is restarting; try again in a moment."};
  case HUB_EBUSY:
    return (http_error_map){503, "ServiceUnavailable", "Server busy, retry later"};
  case HUB_EBLOCKED:
    return (http_error_map){403, "BlockedByScan",
                            "This file was flagged by the security scan and is blocked"};
  case HUB_EUPSTREAM:
    return (http_error_map){502, "UpstreamError", "The upstream hub failed to answer"};
  case HUB_EOFFLINE:
    return (http_error_map){503, "Offline", "The hub is offline and this content is not cached"};
  case HUB_ERATELIMIT:
    return (http_error_map){429, "TooManyRequests", "Too many requests, retry later"};
  default:
    return (http_error_map){500, "InternalError", "Internal server error"};
  }
}
