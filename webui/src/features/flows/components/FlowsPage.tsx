export default function FlowsPage() { return <h1>FlowsPage</h1> }
