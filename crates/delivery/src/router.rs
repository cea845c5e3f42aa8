//! One transport per channel, chosen by the recipient's address.

use std::sync::Arc;

use crate::{Address, Message, SendError, Transport};

/// Sends each message through the transport for its address's channel.
///
/// Also a [`Transport`] itself, so the outbox worker holds one
/// `Arc<dyn Transport>` whatever is configured.
#[derive(Clone, Default)]
pub struct Router {
    email: Option<Arc<dyn Transport>>,
    sms: Option<Arc<dyn Transport>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("email", &self.email.as_ref().map(|t| t.name()))
            .field("sms", &self.sms.as_ref().map(|t| t.name()))
            .finish()
    }
}

impl Router {
    /// A router with these transports; `None` leaves a channel without one.
    pub fn new(email: Option<Arc<dyn Transport>>, sms: Option<Arc<dyn Transport>>) -> Self {
        Router { email, sms }
    }

    /// The transport for `to`'s channel, if one is configured.
    pub fn transport_for(&self, to: &Address) -> Option<&Arc<dyn Transport>> {
        match to {
            Address::Email(_) => self.email.as_ref(),
            Address::Sms(_) => self.sms.as_ref(),
        }
    }

    /// Sends `message` through the transport for its address. With none
    /// configured for that channel the error is [`SendError::Permanent`]:
    /// retrying cannot conjure one up.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        match (self.transport_for(&message.to), &message.to) {
            (Some(transport), _) => transport.send(message).await,
            (None, Address::Email(_)) => Err(SendError::Permanent("no email transport configured".into())),
            (None, Address::Sms(_)) => Err(SendError::Permanent("no sms transport configured".into())),
        }
    }
}

#[async_trait::async_trait]
impl Transport for Router {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        Router::send(self, message).await
    }

    fn name(&self) -> &'static str {
        "router"
    }
}
