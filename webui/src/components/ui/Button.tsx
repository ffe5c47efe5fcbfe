import type { ButtonHTMLAttributes, ReactNode } from 'react'

// Contrast: white on primary-600 is 4.1:1, under the 4.5:1 rule, so the base is primary-700.
const variants = {
  primary: 'bg-primary-700 hover:bg-primary-800 text-white',
  secondary: 'bg-slate-700 hover:bg-slate-600 text-amber-300',
  danger: 'bg-red-700 hover:bg-red-800 text-white',
  ghost: 'bg-transparent hover:bg-slate-700 text-amber-400 hover:text-amber-200',
  admin: 'bg-yellow-600/20 text-yellow-400 border border-yellow-600/40 hover:bg-yellow-600/30',
} as const

const sizes = {
  sm: 'px-2.5 py-1.5 text-sm',
  md: 'px-4 py-2 text-sm',
  lg: 'px-5 py-2.5 text-base',
} as const

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: keyof typeof variants
  size?: keyof typeof sizes
  icon?: ReactNode
}

export function Button({ variant = 'primary', size = 'md', icon, children, className = '', type = 'button', ...props }: ButtonProps) {
  return (
    <button
      type={type}
      className={`inline-flex items-center justify-center gap-2 rounded-lg font-medium transition-colors focus:outline-none focus-visible:ring-2 focus-visible:ring-primary-500 disabled:cursor-not-allowed disabled:opacity-60 ${variants[variant]} ${sizes[size]} ${className}`}
      {...props}
    >
      {icon}
      {children}
    </button>
  )
}
