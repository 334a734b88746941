import Synchronization

/// Delivers the first of several answers that race (a query's result and its deadline, say) and
/// drops the rest: a continuation is resumed exactly once.
package final class FirstAnswer<V: Sendable>: Sendable {
    private let deliver: Mutex<(@Sendable (V) -> Void)?>

    package init(_ deliver: @escaping @Sendable (V) -> Void) { self.deliver = Mutex(deliver) }

    package func give(_ answer: V) { deliver.withLock { $0.take() }?(answer) }
}
