use crate::NodeId;

/// Why a tree operation, proof generation or proof verification failed.
///
/// Verification errors are deliberately fine-grained so logs and monitors can tell
/// a malformed request (wrong length, wrong sizes) from an actual forgery or fork
/// ([`ProofError::RootMismatch`]), which is the one that must raise an alarm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index is out of range for the tree size")]
    IndexOutOfRange,
    /// The old tree size is larger than the new one.
    #[error("old tree size is larger than the new tree size")]
    SizesOutOfOrder,
    /// Consistency with an empty tree proves nothing, so it is refused rather than
    /// silently accepted.
    #[error("the old tree is empty; consistency with it proves nothing")]
    EmptyTree,
    /// A hash, root or proof element is not exactly 32 bytes.
    #[error("a hash is not 32 bytes long")]
    BadLength,
    /// The proof has a different number of elements than the sizes require.
    #[error("the proof has the wrong number of elements for these sizes")]
    WrongProofSize,
    /// The proof does not lead to the claimed root(s): a forgery, a fork or a bug.
    #[error("the proof does not match the root")]
    RootMismatch,
    /// [`crate::ProofPlan::assemble`] was not given a node the plan requires.
    #[error("stored node hash missing: level {} index {}", .0.level, .0.index)]
    MissingNode(NodeId),
    /// The frontier passed to [`crate::append`] does not fit the tree size.
    #[error("frontier does not match the tree size")]
    FrontierMismatch,
    /// Appending would make the tree size overflow `u64`.
    #[error("tree size would overflow")]
    TooLarge,
}
