//! The server's client of the inference backend (Replicate's API): create a
//! prediction, read one back, and map its status to an operation state.
use protocol::api::personal_server::{ErrorCode, OperationState};
use protocol::api::replicate::{self, CreatePrediction, Prediction, PredictionStatus};

use super::AppState;
use super::error::ApiError;

/// Sends one request to the inference backend (bearer token, base URL from
/// the upstreams); a transport failure is a `COMPUTE_ERROR`.
pub(super) async fn inference_request(
    state: &AppState,
    method: reqwest::Method,
    path: &str,
    body: Option<&CreatePrediction>,
) -> Result<reqwest::Response, ApiError> {
    let url = format!(
        "{}{path}",
        state.upstreams.inference_url.trim_end_matches('/')
    );
    let mut request = state
        .http
        .request(method, &url)
        .bearer_auth(&state.config.replicate_token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Compute,
            format!("inference backend unreachable: {e}"),
        )
    })
}

pub(super) async fn read_prediction(response: reqwest::Response) -> Result<Prediction, ApiError> {
    response.json::<Prediction>().await.map_err(|e| {
        ApiError::new(
            ErrorCode::Compute,
            format!("inference backend sent an invalid prediction: {e}"),
        )
    })
}

pub(super) async fn create_prediction(
    state: &AppState,
    prompt: String,
) -> Result<Prediction, ApiError> {
    let body = CreatePrediction::prompt(&prompt, state.config.max_tokens);
    let response = inference_request(
        state,
        reqwest::Method::POST,
        &replicate::create_path(&state.config.model),
        Some(&body),
    )
    .await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(ApiError::new(
            ErrorCode::of_upstream_status(status.as_u16(), ErrorCode::Compute),
            format!(
                "inference backend answered HTTP {}: {}",
                status.as_u16(),
                text.chars().take(200).collect::<String>()
            ),
        ));
    }
    read_prediction(response).await
}

pub(super) fn to_operation_state(status: PredictionStatus) -> OperationState {
    match status {
        PredictionStatus::Starting => OperationState::Starting,
        PredictionStatus::Processing => OperationState::Processing,
        PredictionStatus::Succeeded => OperationState::Succeeded,
        PredictionStatus::Failed => OperationState::Failed,
        PredictionStatus::Canceled => OperationState::Canceled,
    }
}

pub(super) async fn fetch_prediction(state: &AppState, id: &str) -> Result<Prediction, ApiError> {
    let response =
        inference_request(state, reqwest::Method::GET, &replicate::get_path(id), None).await?;
    match response.status().as_u16() {
        200 => read_prediction(response).await,
        404 => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("operation {id} not found"),
        )),
        s => Err(ApiError::new(
            ErrorCode::of_upstream_status(s, ErrorCode::Compute),
            format!("inference backend answered HTTP {s}"),
        )),
    }
}
