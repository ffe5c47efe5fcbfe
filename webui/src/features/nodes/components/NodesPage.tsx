export default function NodesPage() { return <h1>NodesPage</h1> }
