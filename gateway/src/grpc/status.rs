//! The gRPC status of a failed call: the code whose meaning matches the HTTP
//! status the gateway would answer (docs/grpc.md has the table).

use actix_web::http::StatusCode;
use tonic::{Code, Status};

use crate::error::ApiError;

/// The code of an HTTP answer's status.
pub(crate) fn code_of(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 405 | 431 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 | 504 => Code::DeadlineExceeded,
        413 | 429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// `e` as a gRPC status, with the same message as the HTTP body's.
pub(crate) fn from_api(e: &ApiError) -> Status {
    Status::new(code_of(e.status), e.message.clone())
}

/// The name of a code, as a metric label.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::Unimplemented => "Unimplemented",
        Code::Unavailable => "Unavailable",
        Code::Unauthenticated => "Unauthenticated",
        Code::Internal => "Internal",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_codes_of_the_same_meaning() {
        let cases = [
            (ApiError::bad_request("x"), Code::InvalidArgument),
            (ApiError::unauthorized("x"), Code::Unauthenticated),
            (ApiError::forbidden("x"), Code::PermissionDenied),
            (ApiError::not_found("x"), Code::NotFound),
            (ApiError::payload_too_large(1), Code::ResourceExhausted),
            (ApiError::too_many_requests(), Code::ResourceExhausted),
            (ApiError::unavailable("x"), Code::Unavailable),
            (ApiError::timeout("x"), Code::DeadlineExceeded),
            (ApiError::internal("rid"), Code::Internal),
        ];
        for (e, code) in cases {
            let s = from_api(&e);
            assert_eq!(s.code(), code, "{e:?}");
            assert_eq!(s.message(), e.message);
        }
    }
}
