//! The catalogue of stable error codes clients see.
//!
//! Modules keep their own `thiserror` enums for what went wrong inside; at the API edge
//! each becomes an [`ApiError`] whose snake_case code is stable, documented, and mapped
//! to an HTTP status and to GraphQL `extensions.code`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

/// A stable, client-facing error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    SignatureInvalid,
    VerifyTokenInvalid,
    ChannelNotFound,
    PayloadTooLarge,
    /// A request body of a type the endpoint does not take (multipart on GraphQL).
    UnsupportedMediaType,
    /// A GraphQL request that is not well formed or fails validation or the limits.
    InvalidQuery,
    InvalidInput,
    ConversationNotFound,
    AgentNotFound,
    TeamNotFound,
    DeadLetterNotFound,
    TokenNotFound,
    HeldMessageNotFound,
    TemplateNotFound,
    ContactNotFound,
    /// No custom field on contacts has this key.
    ContactFieldNotFound,
    /// A custom field's value does not fit its type (or an enum's options).
    ContactFieldValueInvalid,
    NameTaken,
    InvalidStatusTransition,
    ConversationClosed,
    NotAssignee,
    Collision,
    /// Outside the 24-hour customer service window only templates may be sent.
    WindowClosed,
    /// The contact opted out of messages of this purpose.
    ConsentWithdrawn,
    InvalidConfig,
    /// A held message was already approved or rejected: nothing is sent twice.
    AlreadyDecided,
    /// No variant of the template is approved (internally and by Meta) for sending.
    TemplateNotApproved,
    /// A template send's variables are missing, unknown or of the wrong type.
    TemplateVariablesInvalid,
    /// The template's workflow does not allow this step from its status.
    InvalidTemplateTransition,
    /// No media file with this id (or its bytes were erased).
    MediaNotFound,
    /// A media download URL whose signature does not match (tampered, or not ours).
    MediaUrlInvalid,
    /// A media download URL past its expiry: ask the API for a fresh one.
    MediaUrlExpired,
    /// A media file that cannot be attached: not an upload, not stored, or already sent.
    MediaNotUsable,
    MacroNotFound,
    /// A macro names a variable Parley does not know (refused when it is written).
    MacroVariableUnknown,
    /// A variable of the macro has no value on this case: nothing was sent or changed.
    MacroValueMissing,
    Unavailable,
    Internal,
    /// An error of the plugin host, with its own stable code (`plugin_not_loaded`,
    /// `plugin_wrong_world`, `plugin_timeout`, ...; see `PluginError::code`).
    Plugin(&'static str),
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::SignatureInvalid => "signature_invalid",
            Self::VerifyTokenInvalid => "verify_token_invalid",
            Self::ChannelNotFound => "channel_not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidInput => "invalid_input",
            Self::ConversationNotFound => "conversation_not_found",
            Self::AgentNotFound => "agent_not_found",
            Self::TeamNotFound => "team_not_found",
            Self::DeadLetterNotFound => "dead_letter_not_found",
            Self::TokenNotFound => "token_not_found",
            Self::HeldMessageNotFound => "held_message_not_found",
            Self::TemplateNotFound => "template_not_found",
            Self::ContactNotFound => "contact_not_found",
            Self::ContactFieldNotFound => "contact_field_not_found",
            Self::ContactFieldValueInvalid => "contact_field_value_invalid",
            Self::NameTaken => "name_taken",
            Self::InvalidStatusTransition => "invalid_status_transition",
            Self::ConversationClosed => "conversation_closed",
            Self::NotAssignee => "not_assignee",
            Self::Collision => "collision",
            Self::WindowClosed => "window_closed",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::InvalidConfig => "invalid_config",
            Self::AlreadyDecided => "already_decided",
            Self::TemplateNotApproved => "template_not_approved",
            Self::TemplateVariablesInvalid => "template_variables_invalid",
            Self::InvalidTemplateTransition => "invalid_template_transition",
            Self::MediaNotFound => "media_not_found",
            Self::MediaUrlInvalid => "media_url_invalid",
            Self::MediaUrlExpired => "media_url_expired",
            Self::MediaNotUsable => "media_not_usable",
            Self::MacroNotFound => "macro_not_found",
            Self::MacroVariableUnknown => "macro_variable_unknown",
            Self::MacroValueMissing => "macro_value_missing",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Plugin(code) => code,
        }
    }

    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::SignatureInvalid => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::VerifyTokenInvalid => StatusCode::FORBIDDEN,
            Self::ChannelNotFound
            | Self::ConversationNotFound
            | Self::AgentNotFound
            | Self::TeamNotFound
            | Self::DeadLetterNotFound
            | Self::TokenNotFound
            | Self::HeldMessageNotFound
            | Self::TemplateNotFound
            | Self::MediaNotFound
            | Self::MacroNotFound
            | Self::ContactNotFound
            | Self::ContactFieldNotFound => StatusCode::NOT_FOUND,
            Self::MediaUrlInvalid | Self::MediaUrlExpired => StatusCode::FORBIDDEN,
            Self::MediaNotUsable => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidQuery => StatusCode::BAD_REQUEST,
            Self::InvalidInput
            | Self::InvalidStatusTransition
            | Self::ConversationClosed
            | Self::WindowClosed
            | Self::ConsentWithdrawn
            | Self::ContactFieldValueInvalid => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NameTaken | Self::NotAssignee | Self::Collision | Self::AlreadyDecided => {
                StatusCode::CONFLICT
            }
            Self::InvalidConfig
            | Self::TemplateNotApproved
            | Self::TemplateVariablesInvalid
            | Self::InvalidTemplateTransition
            | Self::MacroVariableUnknown
            | Self::MacroValueMissing => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Plugin("plugin_not_loaded") => StatusCode::NOT_FOUND,
            Self::Plugin(
                "plugin_manifest_invalid"
                | "plugin_component_unreadable"
                | "plugin_component_corrupt"
                | "plugin_world_unsupported"
                | "plugin_wrong_world"
                | "plugin_kind_mismatch",
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Plugin(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error as a client sees it: a stable code and a sentence.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An unexpected failure: logged in full, shown to the client without internals.
    pub fn internal(error: impl fmt::Display) -> Self {
        tracing::error!(error = %error, "Request failed unexpectedly.");
        Self::new(ErrorCode::Internal, "internal error; see the server log")
    }
}

// ApiError deliberately does not implement Display: async-graphql converts anything that
// does into an error without extensions, which would drop the code silently. HTTP
// handlers wrap it in [`HttpError`].

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let mut converted = async_graphql::Error::new(error.message);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", error.code.as_str());
        converted.extensions = Some(extensions);
        converted
    }
}

/// An [`ApiError`] as an HTTP response: its status, and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code.as_str(), self.0.message)
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.0.code.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({
            "error": { "code": self.0.code.as_str(), "message": self.0.message }
        }))
    }
}
